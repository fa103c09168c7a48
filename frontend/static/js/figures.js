/* Render a result's Plotly figures, fetched as JSON from the REST API. */
(function () {
  "use strict";
  var CONFIG = { responsive: true, displaylogo: false };

  function draw(el, figure) {
    var layout = Object.assign({ height: 460 }, figure.layout || {});
    return window.Plotly.newPlot(el, figure.data || [], layout, CONFIG).then(function () {
      el.setAttribute("data-rendered", "1");
      var points = 0;
      (figure.data || []).forEach(function (t) {
        var z = t.z || t.y || [];
        points += z.length || 0;
      });
      el.setAttribute("data-points", String(points));
    });
  }

  function renderAll(container) {
    if (!container) return;
    var api = container.getAttribute("data-figure-api");
    var plots = container.querySelectorAll("[data-figure-name]");
    Array.prototype.forEach.call(plots, function (el) {
      var url = api + "?name=" + encodeURIComponent(el.getAttribute("data-figure-name"));
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (fig) { return draw(el, fig); })
        .catch(function (err) { el.textContent = "Could not load this figure (" + err.message + ")."; });
    });
  }

  /* Figures already embedded in the page as a {name: figure} object (reports). */
  function renderInline(figures) {
    Object.keys(figures).forEach(function (name) {
      var el = document.getElementById("figure-" + name);
      if (el) draw(el, figures[name]);
    });
  }

  window.CorreLiFigures = { renderAll: renderAll, renderInline: renderInline, draw: draw };
})();
