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

  /* When each update was received and drawn (wall-clock ms), the newest 1000: the delay
     benchmark (benchmarks/bench_live_e2e.py) reads them; nothing else depends on them. */
  var draws = [];
  window.CorreLiLive = { draws: draws };
  function now() { return performance.timeOrigin + performance.now(); }

  function heatmap(el, z, title, zmin, zmax) {
    var trace = { z: z, type: "heatmap", colorscale: "Viridis", colorbar: { title: title } };
    if (zmin !== undefined) { trace.zmin = zmin; trace.zmax = zmax; }
    var layout = { margin: { t: 10, r: 10, b: 30, l: 40 }, yaxis: { autorange: "reversed", scaleanchor: "x" } };
    var done = window.Plotly.react(el, [trace], layout, { displaylogo: false, responsive: true });
    el.setAttribute("data-rendered", "1");
    return done;
  }

  function render(msg) {
    var received = now();
    var drawing = [];
    updates += 1;
    var nodes = root.querySelectorAll("[data-live]");
    for (var i = 0; i < nodes.length; i++) {
      var name = nodes[i].getAttribute("data-live");
      if (name === "updates") nodes[i].textContent = String(updates);
      else if (name in msg) nodes[i].textContent = fmt(name, msg[name]);
    }
    if (msg.status) document.getElementById("live-status").textContent = msg.status;
    root.setAttribute("data-events-counted", String(msg.events_counted || 0));
    if (msg.li) drawing.push(heatmap(document.getElementById("live-li-map"), msg.li, "1 - x", 0, 1));
    if (msg.counts) drawing.push(heatmap(document.getElementById("live-counts-map"), msg.counts, "counts"));
    Promise.all(drawing).then(function () {
      window.requestAnimationFrame(function () {  /* the next frame on screen shows the maps */
        draws.push({ seq: msg.processed_seq, status: msg.status, computed_at: msg.map_computed_at,
                     received_ms: received, drawn_ms: now() });
        if (draws.length > 1000) draws.shift();
      });
    });
  }

  window.CorreLiJobs.on("live-map", function (msg) { if (msg.id === id) render(msg); });

  /* Time-resolved view: Li map per slice with a time slider (Plotly animation) and Li(t). */
  var box = document.getElementById("live-time");
  var form = document.getElementById("live-time-form");
  function query() {
    return "?slice_s=" + encodeURIComponent(form.slice_s.value) + "&regions=" + encodeURIComponent(form.regions.value);
  }
  function showTime(data) {
    var mapEl = document.getElementById("live-time-map");
    var frames = data.li_maps.map(function (z, i) { return { name: String(data.t_s[i]), data: [{ z: z }] }; });
    var steps = data.t_s.map(function (t) {
      return { label: t + " s", method: "animate", args: [[String(t)], { mode: "immediate", frame: { duration: 0, redraw: true } }] };
    });
    window.Plotly.newPlot(mapEl, [{ z: data.li_maps[0], type: "heatmap", colorscale: "Viridis", zmin: 0, zmax: 1, colorbar: { title: "1 - x" } }], {
      margin: { t: 10, r: 10, b: 60, l: 40 }, yaxis: { autorange: "reversed", scaleanchor: "x" },
      sliders: [{ steps: steps, currentvalue: { prefix: "t = " } }],
      updatemenus: [{ type: "buttons", showactive: false, x: 0, y: -0.15, buttons: [
        { label: "Play", method: "animate", args: [null, { frame: { duration: 500, redraw: true }, fromcurrent: true }] }] }]
    }, { displaylogo: false, responsive: true }).then(function () { window.Plotly.addFrames(mapEl, frames); });
    mapEl.setAttribute("data-rendered", "1");
    var traces = data.regions.map(function (r) {
      return { x: data.t_s, y: r.li, error_y: { type: "data", array: r.li_sigma, visible: true }, mode: "lines+markers",
               name: "region " + r.region + " (" + (r.rate_per_s === null ? "-" : r.rate_per_s.toFixed(4)) + " /s)" };
    });
    var curveEl = document.getElementById("live-time-curve");
    window.Plotly.newPlot(curveEl, traces, { margin: { t: 10, r: 10, b: 40, l: 50 }, xaxis: { title: "t (s)" }, yaxis: { title: "Li (1 - x)" } },
                          { displaylogo: false, responsive: true });
    curveEl.setAttribute("data-rendered", "1");
  }
  if (box && form) {
    var csv = document.getElementById("live-time-csv");
    function updateCsv() { csv.href = box.getAttribute("data-api") + query() + "&export=csv"; }
    form.addEventListener("input", updateCsv);
    updateCsv();
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var err = document.getElementById("live-time-error");
      fetch(box.getAttribute("data-api") + query(), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (res) {
          err.hidden = res.ok;
          if (!res.ok) { err.textContent = res.body.detail || "could not re-bin"; return; }
          showTime(res.body);
        });
    });
  }
})();
