/* Live acquisition page: the Li and counts maps and the numbers, redrawn on every pushed
   "live-map" event (server-sent events; no polling, no reloads). */
(function () {
  "use strict";
  var root = document.getElementById("live-acquisition");
  if (!root || !window.CorreLiJobs) return;
  var id = parseInt(root.getAttribute("data-acquisition-id"), 10);
  var updates = 0;

  function fmt(name, v) {
    if (v === null || v === undefined) return "-";
    if (typeof v !== "number") return String(v);
    if (name === "li_mean") return v.toFixed(4);
    if (name === "elapsed_s" || name === "seconds_to_target") return v.toFixed(1);
    return Math.round(v).toLocaleString("en-GB");
  }

  function heatmap(el, z, title, zmin, zmax) {
    var trace = { z: z, type: "heatmap", colorscale: "Viridis", colorbar: { title: title } };
    if (zmin !== undefined) { trace.zmin = zmin; trace.zmax = zmax; }
    var layout = { margin: { t: 10, r: 10, b: 30, l: 40 }, yaxis: { autorange: "reversed", scaleanchor: "x" } };
    window.Plotly.react(el, [trace], layout, { displaylogo: false, responsive: true });
    el.setAttribute("data-rendered", "1");
  }

  function render(msg) {
    updates += 1;
    var nodes = root.querySelectorAll("[data-live]");
    for (var i = 0; i < nodes.length; i++) {
      var name = nodes[i].getAttribute("data-live");
      if (name === "updates") nodes[i].textContent = String(updates);
      else if (name in msg) nodes[i].textContent = fmt(name, msg[name]);
    }
    if (msg.status) document.getElementById("live-status").textContent = msg.status;
    root.setAttribute("data-events-counted", String(msg.events_counted || 0));
    if (msg.li) heatmap(document.getElementById("live-li-map"), msg.li, "1 - x", 0, 1);
    if (msg.counts) heatmap(document.getElementById("live-counts-map"), msg.counts, "counts");
  }

  window.CorreLiJobs.on("live-map", function (msg) { if (msg.id === id) render(msg); });
})();
