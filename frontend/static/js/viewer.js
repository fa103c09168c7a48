/* CorreLi slice viewer: three orthogonal planes (or NXtomo images) fetched one at a time as
   raw float32 from the server, drawn on canvases with a contrast window, a colour map, an
   optional mask overlay, depth-region boundaries and a scale bar in um. */
(function () {
  "use strict";
  const root = document.getElementById("viewer");
  if (!root) return;
  const meta = JSON.parse(document.getElementById("viewer-meta").textContent);
  const base = root.dataset.base;
  const message = document.getElementById("viewer-message");
  const state = { window: null, cmap: "grey", overlay: "", regions: true, planes: {} };

  const CMAPS = {
    grey: (t) => [t * 255, t * 255, t * 255],
    viridis: (t) => lerp([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], t),
    magma: (t) => lerp([[0, 0, 4], [81, 18, 124], [183, 55, 121], [252, 137, 97], [252, 253, 191]], t),
  };
  function lerp(stops, t) {
    const x = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
    const i = Math.min(Math.floor(x), stops.length - 2), f = x - i;
    return [0, 1, 2].map((k) => stops[i][k] * (1 - f) + stops[i + 1][k] * f);
  }

  function showError(text) { message.textContent = text; message.hidden = !text; }

  async function fetchPlane(params) {
    const url = base + "slice/?" + new URLSearchParams(params);
    const r = await fetch(url, { credentials: "same-origin" });
    if (!r.ok) {
      let detail = r.statusText;
      try { detail = (await r.json()).detail; } catch (e) { /* keep status text */ }
      throw new Error(detail);
    }
    const [h, w] = r.headers.get("X-Shape").split(",").map(Number);
    const dtype = r.headers.get("X-Dtype");
    const buf = await r.arrayBuffer();
    const data = dtype === "uint8" ? new Uint8Array(buf) : new Float32Array(buf);
    const win = r.headers.get("X-Window").split(",").map(Number);
    return { h, w, data, step: Number(r.headers.get("X-Step")), win,
             origin: r.headers.get("X-Origin").split(",").map(Number) };
  }

  function histogram(plane) {
    const c = document.getElementById("histogram");
    if (!c || !plane) return;
    const g = c.getContext("2d"), n = c.width, counts = new Float64Array(n);
    let lo = Infinity, hi = -Infinity;
    for (const v of plane.data) if (isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (!(hi > lo)) hi = lo + 1;
    for (const v of plane.data) if (isFinite(v)) counts[Math.min(n - 1, Math.floor((v - lo) / (hi - lo) * n))]++;
    const max = Math.max(...counts.map((x) => Math.log1p(x)));
    g.clearRect(0, 0, n, c.height);
    g.fillStyle = "#777";
    counts.forEach((x, i) => { const h = Math.log1p(x) / max * c.height; g.fillRect(i, c.height - h, 1, h); });
    const [a, b] = state.window;
    g.fillStyle = "rgba(31,119,180,0.25)";
    g.fillRect((a - lo) / (hi - lo) * n, 0, (b - a) / (hi - lo) * n, c.height);
  }

  function draw(canvas, plane, overlay, axis) {
    canvas.width = plane.w; canvas.height = plane.h;
    const g = canvas.getContext("2d");
    const img = g.createImageData(plane.w, plane.h);
    const [lo, hi] = state.window, span = hi - lo || 1, cmap = CMAPS[state.cmap];
    for (let i = 0; i < plane.data.length; i++) {
      const v = plane.data[i];
      let rgb = isFinite(v) ? cmap((v - lo) / span) : [0, 0, 0];
      if (overlay && overlay.data[i]) rgb = [rgb[0] * 0.45 + 255 * 0.55, rgb[1] * 0.45 + 40 * 0.55, rgb[2] * 0.45];
      img.data[4 * i] = rgb[0]; img.data[4 * i + 1] = rgb[1]; img.data[4 * i + 2] = rgb[2]; img.data[4 * i + 3] = 255;
    }
    g.putImageData(img, 0, 0);
    if (meta.regions && state.regions && axis !== undefined && meta.regions.axis !== axis) {
      // the region bounds run along the thickness axis, seen as lines in the other planes
      const dims = [0, 1, 2].filter((d) => d !== axis);
      const along = dims.indexOf(meta.regions.axis);
      g.strokeStyle = "#ffd400"; g.lineWidth = Math.max(1, plane.w / 300); g.setLineDash([6, 4]);
      meta.regions.bounds.forEach((b) => {
        const p = (b - plane.origin[along]) / plane.step;
        g.beginPath();
        if (along === 0) { g.moveTo(0, p); g.lineTo(plane.w, p); } else { g.moveTo(p, 0); g.lineTo(p, plane.h); }
        g.stroke();
      });
      g.setLineDash([]);
    }
    scaleBar(g, plane);
  }

  function scaleBar(g, plane) {
    const um = meta.voxel_size_um ? meta.voxel_size_um * plane.step : null;
    const target = plane.w * 0.25 * (um || plane.step);
    const nice = [1, 2, 5].flatMap((m) => [1, 10, 100, 1000, 10000].map((p) => m * p)).sort((a, b) => a - b);
    const length = nice.filter((x) => x <= target).pop() || nice[0];
    const px = length / (um || plane.step);
    const y = plane.h - Math.max(8, plane.h * 0.04), x = plane.w - px - Math.max(8, plane.w * 0.04);
    g.fillStyle = "#fff"; g.fillRect(x, y, px, Math.max(2, plane.h / 120));
    g.font = `${Math.max(10, Math.round(plane.w / 28))}px sans-serif`;
    g.fillText(um ? `${length} um` : `${length} px`, x, y - 4);
  }

  function showAll() {
    for (const [key, entry] of Object.entries(state.planes)) {
      draw(entry.canvas, entry.plane, entry.overlay, entry.axis);
    }
    const first = Object.values(state.planes)[0];
    if (first) histogram(first.plane);
  }

  function setWindow(win) {
    state.window = win;
    document.getElementById("win-low").value = win[0].toPrecision(4);
    document.getElementById("win-high").value = win[1].toPrecision(4);
  }

  async function load(canvas, params, axis, full) {
    try {
      const p = Object.assign({ max: full ? 4096 : 512 }, params);
      const plane = await fetchPlane(p);
      let overlay = null;
      if (state.overlay && axis !== undefined) {
        overlay = await fetchPlane(Object.assign({}, p, { layer: state.overlay }));
      }
      if (!state.window) setWindow(plane.win);
      state.planes[canvas.dataset.key] = { canvas, plane, overlay, axis };
      showError("");
      draw(canvas, plane, overlay, axis);
      histogram(plane);
      canvas.dataset.loaded = String(Number(canvas.dataset.loaded || 0) + 1);
    } catch (e) { showError(e.message); }
  }

  document.getElementById("cmap").addEventListener("change", (e) => { state.cmap = e.target.value; showAll(); });
  for (const id of ["win-low", "win-high"]) {
    document.getElementById(id).addEventListener("change", () => {
      state.window = [Number(document.getElementById("win-low").value), Number(document.getElementById("win-high").value)];
      showAll();
    });
  }
  document.getElementById("win-auto").addEventListener("click", () => {
    const first = Object.values(state.planes)[0];
    if (first) { setWindow(first.plane.win); showAll(); }
  });

  if (meta.kind === "nxtomo") {
    const canvas = document.getElementById("pane-nx"); canvas.dataset.key = "nx";
    const layer = document.getElementById("nx-layer"), index = document.getElementById("nx-index");
    const label = document.getElementById("nx-index-value");
    const limits = { projection: meta.nxtomo.projections, flat: 1, dark: 1, sinogram: meta.nxtomo.rows };
    const update = (full) => {
      index.max = limits[layer.value] - 1; label.textContent = index.value;
      state.window = null;
      load(canvas, { layer: layer.value, index: index.value }, undefined, full);
    };
    layer.addEventListener("change", () => { index.value = layer.value === "sinogram" ? Math.floor(meta.nxtomo.rows / 2) : 0; update(false); });
    index.addEventListener("change", () => update(false));
    canvas.addEventListener("click", () => update(true));
    update(false);
    document.getElementById("cor-run").addEventListener("click", async () => {
      const q = new URLSearchParams({ row: document.getElementById("cor-row").value,
        spacing: document.getElementById("cor-spacing").value, count: 5 });
      const c = document.getElementById("cor-center").value; if (c) q.set("center", c);
      const r = await fetch(base + "cor/?" + q, { credentials: "same-origin" });
      if (!r.ok) { showError((await r.json()).detail); return; }
      const [k, h, w] = r.headers.get("X-Shape").split(",").map(Number);
      const centres = r.headers.get("X-Centers").split(",");
      const data = new Float32Array(await r.arrayBuffer());
      const out = document.getElementById("cor-images"); out.innerHTML = "";
      for (let i = 0; i < k; i++) {
        const fig = document.createElement("figure"), cv = document.createElement("canvas");
        const plane = { h, w, step: 1, origin: [0, 0], data: data.subarray(i * h * w, (i + 1) * h * w) };
        let lo = Infinity, hi = -Infinity; for (const v of plane.data) { if (v < lo) lo = v; if (v > hi) hi = v; }
        const saved = state.window; state.window = [lo, hi]; draw(cv, plane, null, undefined); state.window = saved;
        const cap = document.createElement("figcaption"); cap.textContent = `centre ${centres[i]} px`;
        fig.append(cv, cap); out.append(fig);
      }
    });
    return;
  }

  const grey = meta.layers.grey ? "grey" : Object.keys(meta.layers)[0];
  const shape = meta.layers[grey].shape;
  const index = {};
  document.querySelectorAll("canvas.slice").forEach((canvas) => {
    const axis = Number(canvas.dataset.axis); canvas.dataset.key = "a" + axis;
    const slider = document.querySelector(`input.slider[data-axis="${axis}"]`);
    const label = slider.parentElement.querySelector(".idx");
    slider.min = 0; slider.max = shape[axis] - 1; slider.value = Math.floor(shape[axis] / 2);
    const update = (full) => { label.textContent = `${slider.value} / ${shape[axis] - 1}`;
      load(canvas, { layer: grey, axis, index: slider.value }, axis, full); };
    slider.addEventListener("input", () => { label.textContent = `${slider.value} / ${shape[axis] - 1}`; });
    slider.addEventListener("change", () => update(false));
    canvas.addEventListener("click", () => update(true));
    index[axis] = update;
    update(false);
  });
  const overlay = document.getElementById("overlay");
  overlay.addEventListener("change", () => { state.overlay = overlay.value; Object.values(index).forEach((u) => u(false)); });
  document.getElementById("show-regions").addEventListener("change", (e) => { state.regions = e.target.checked; showAll(); });
})();
