/* Dataset page: fetch the preview (facts + Plotly figures) and show it, or its error. */
(function () {
  "use strict";
  var box = document.getElementById("dataset-preview");
  if (!box) return;
  function text(tag, value, cls) { var el = document.createElement(tag); el.textContent = value; if (cls) el.className = cls; return el; }
  fetch(box.getAttribute("data-url"), { credentials: "same-origin" })
    .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
    .then(function (res) {
      box.innerHTML = "";
      if (!res.ok) { box.appendChild(text("p", res.body.detail, "error")).id = "preview-error"; return; }
      var body = res.body;
      if (body.none) { box.appendChild(text("p", "No preview for this kind of dataset.", "muted")); return; }
      if (body.facts.length) {
        var table = document.createElement("table"); table.className = "table summary-table"; table.id = "preview-facts";
        body.facts.forEach(function (f) {
          var tr = document.createElement("tr");
          tr.appendChild(text("th", f.label)); tr.appendChild(text("td", f.value === null ? "–" : String(f.value), "num"));
          tr.appendChild(text("td", f.unit)); table.appendChild(tr);
        });
        box.appendChild(table);
      }
      box.appendChild(text("p", body.stored ? "Computed when the dataset became ready (" + body.stored_at + ")." : "Computed on request.", "muted small")).id = "preview-origin";
      if (body.viewer) box.appendChild(text("p", "Browse the images slice by slice with the Slices button above.", "muted small"));
      Object.keys(body.figures).forEach(function (name) {
        var el = document.createElement("div"); el.className = "plot"; el.setAttribute("data-figure-name", name);
        box.appendChild(el);
        var fig = body.figures[name];
        window.Plotly.newPlot(el, fig.data, Object.assign({ height: 400 }, fig.layout), { responsive: true, displaylogo: false })
          .then(function () { el.setAttribute("data-rendered", "1"); });
      });
    })
    .catch(function (err) { box.textContent = "Could not load the preview (" + err.message + ")."; });
})();
