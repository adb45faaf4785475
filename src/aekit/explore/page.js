// aekit explore: the map of the codes, hover and click, the worst list and interpolations. Points are images
// (gray or color), or a table's rows (data.kind "table"): a row is shown as its values beside their reconstruction.
// Reads the JSON in #aekit-data (written by aekit/explore/page.py); decodes with AekitDecoder.
"use strict";
(async function () {
  const $ = (id) => document.getElementById(id);
  const data = JSON.parse($("aekit-data").textContent);
  const STEPS = 10;  // images in an interpolation strip, both ends included
  const WORST = 50;  // rows in the worst-first list
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];  // viridis stops

  // --- arrays: base64 -> inflate -> typed views -------------------------------------------------
  function half(u) {  // IEEE float16 bits -> number
    const s = u & 0x8000 ? -1 : 1, e = (u >> 10) & 0x1f, f = u & 0x3ff;
    if (e === 0) return s * f * 2 ** -24;
    if (e === 31) return f ? NaN : s * Infinity;
    return s * (1 + f / 1024) * 2 ** (e - 15);
  }
  async function unpack(b64, table) {
    const text = atob(b64), bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    const buf = await new Response(stream).arrayBuffer();
    return table.map(([dtype, offset, length]) => {
      if (dtype === "float16") return Float32Array.from(new Uint16Array(buf, offset, length), half);
      const View = { float32: Float32Array, uint8: Uint8Array, int32: Int32Array }[dtype];
      return new View(buf, offset, length);
    });
  }
  const arrays = await unpack(data.blob, data.table);
  const xy = arrays[data.arrays.xy], errors = arrays[data.arrays.errors], codes = arrays[data.arrays.codes];
  const index = arrays[data.arrays.index];
  const labels = "labels" in data.arrays ? arrays[data.arrays.labels] : null;
  const n = data.n, k = data.code_size, [th, tw, tc] = data.tile;
  const table = data.kind === "table";
  const features = table ? arrays[data.arrays.features] : null;
  const sprite = new Image();
  if (!table) { sprite.src = data.sprite; await sprite.decode(); }

  // --- pixels --------------------------------------------------------------------------------------
  const codeOf = (i) => codes.subarray(i * k, (i + 1) * k);
  const decode = (code) => AekitDecoder.decode(data.decoder, arrays, code);
  function drawImage(canvas, i) {
    canvas.width = tw; canvas.height = th;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(sprite, (i % data.cols) * tw, Math.floor(i / data.cols) * th, tw, th, 0, 0, tw, th);
  }
  function drawPixels(canvas, values) {
    canvas.width = tw; canvas.height = th;
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(tw, th);
    const byte = (v) => Math.round(Math.min(1, Math.max(0, v)) * 255);
    for (let p = 0; p < tw * th; p++) {
      for (let c = 0; c < 3; c++) img.data[4 * p + c] = byte(values[p * tc + (tc === 1 ? 0 : c)]);
      img.data[4 * p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  // --- a table's rows: values in the table's units, errors per column ------------------------------
  const columns = data.columns || [];
  const blocks = [];  // [start, width] of each column's features (a text column: its one-hot block)
  { let s = 0; for (const c of columns) { const w = c.kind === "number" ? 1 : c.categories.length; blocks.push([s, w]); s += w; } }
  const rowWidth = blocks.reduce((a, [, w]) => a + w, 0);  // features per row
  const rowOf = (i) => features.subarray(i * rowWidth, (i + 1) * rowWidth);
  function valueOf(f, j) {  // column j of features f, in the table's units
    const c = columns[j], [s, w] = blocks[j];
    if (c.kind === "number") return (f[s] * c.scale + c.mean).toPrecision(4);
    let best = 0;
    for (let m = 1; m < w; m++) if (f[s + m] > f[s + best]) best = m;
    return f[s + best] > 0 ? c.categories[best] : "(unseen)";
  }
  function columnErrors(f, r) {  // squared error of each column, a one-hot block summed
    return blocks.map(([s, w]) => { let e = 0; for (let m = s; m < s + w; m++) e += (f[m] - r[m]) ** 2; return e; });
  }
  function worstColumns(i, top = 3) {
    const e = columnErrors(rowOf(i), decode(codeOf(i))), total = e.reduce((a, b) => a + b, 0) || 1;
    return e.map((v, j) => [v / total, j]).sort((a, b) => b[0] - a[0]).slice(0, top);
  }
  const shares = (i) => worstColumns(i).map(([s, j]) => `${columns[j].name} (${Math.round(100 * s)}%)`).join("; ");
  function rowTable(i) {  // column, value, reconstruction and share of the error, the worst first
    const f = rowOf(i), r = decode(codeOf(i)), e = columnErrors(f, r), total = e.reduce((a, b) => a + b, 0) || 1;
    const t = document.createElement("table");
    t.className = "row-values";
    t.innerHTML = "<tr><th>column</th><th>value</th><th>reconstruction</th><th>error</th></tr>";
    for (const j of e.map((_, j) => j).sort((a, b) => e[b] - e[a])) {
      const tr = t.insertRow();
      for (const text of [columns[j].name, valueOf(f, j), valueOf(r, j), `${Math.round(100 * e[j] / total)}%`]) tr.insertCell().textContent = text;
    }
    return t;
  }

  // --- colours -------------------------------------------------------------------------------------
  const classColour = (c) => (c < PALETTE.length ? PALETTE[c] : `hsl(${(c * 137.508) % 360},65%,50%)`);
  function ramp(t) {
    const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1), j = Math.min(RAMP.length - 2, Math.floor(x)), f = x - j;
    const c = RAMP[j].map((v, m) => Math.round(v + f * (RAMP[j + 1][m] - v)));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }
  const order = Array.from(errors.keys()).sort((a, b) => errors[b] - errors[a]);  // worst first
  const logErr = (e) => Math.log(Math.max(e, 1e-12));
  const lo = logErr(errors[order[Math.min(n - 1, Math.floor(n * 0.99))]]), hi = logErr(errors[order[Math.floor(n * 0.01)]]);
  const errorT = (i) => (hi > lo ? (logErr(errors[i]) - lo) / (hi - lo) : 0.5);
  function groups(mode) {  // [{colour, members}], one fill per colour keeps 10,000 points smooth
    const bins = new Map();
    for (let i = 0; i < n; i++) {
      const key = mode === "error" ? Math.round(errorT(i) * 31) : labels ? labels[i] : 0;
      if (!bins.has(key)) bins.set(key, []);
      bins.get(key).push(i);
    }
    return [...bins.entries()].sort((a, b) => a[0] - b[0]).map(([key, members]) => ({
      colour: mode === "error" ? ramp(key / 31) : labels ? classColour(key) : "#1f77b4", members, key }));
  }

  // --- the map: view, spatial grid, drawing --------------------------------------------------------
  const canvas = $("map"), ctx = canvas.getContext("2d");
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < n; i++) {
    minX = Math.min(minX, xy[2 * i]); maxX = Math.max(maxX, xy[2 * i]);
    minY = Math.min(minY, xy[2 * i + 1]); maxY = Math.max(maxY, xy[2 * i + 1]);
  }
  const spanX = maxX - minX || 1, spanY = maxY - minY || 1;
  const G = Math.max(1, Math.ceil(Math.sqrt(n / 4)));  // grid cells per side, ~4 points a cell
  const cellOf = (v, min, span) => Math.min(G - 1, Math.max(0, Math.floor(((v - min) / span) * G)));
  const cellStart = new Int32Array(G * G + 1), cellItems = new Int32Array(n);
  {
    const cells = new Int32Array(n);
    for (let i = 0; i < n; i++) cells[i] = cellOf(xy[2 * i + 1], minY, spanY) * G + cellOf(xy[2 * i], minX, spanX);
    for (let i = 0; i < n; i++) cellStart[cells[i] + 1]++;
    for (let c = 0; c < G * G; c++) cellStart[c + 1] += cellStart[c];
    const fill = cellStart.slice(0, G * G);
    for (let i = 0; i < n; i++) cellItems[fill[cells[i]]++] = i;
  }
  const radius = n > 5000 ? 2 : n > 1000 ? 2.5 : 3.5;
  const view = { cx: 0, cy: 0, scale: 1 };
  let width = 0, height = 0, mode = "label", colourGroups = groups(labels ? "label" : "error");
  let hover = -1, ends = [], pending = false, drawn = 0;
  if (!labels) { mode = "error"; $("colour").value = "error"; $("colour").options[0].disabled = true; }
  const toScreen = (i) => [(xy[2 * i] - view.cx) * view.scale + width / 2, height / 2 - (xy[2 * i + 1] - view.cy) * view.scale];
  function fit() {
    view.cx = (minX + maxX) / 2; view.cy = (minY + maxY) / 2;
    view.scale = Math.min((width - 40) / spanX, (height - 40) / spanY);
    schedule();
  }
  function resize() {
    const dpr = window.devicePixelRatio || 1;
    width = canvas.clientWidth; height = canvas.clientHeight;
    canvas.width = Math.round(width * dpr); canvas.height = Math.round(height * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  }
  function draw() {
    pending = false;
    ctx.clearRect(0, 0, width, height);
    let count = 0;
    for (const g of colourGroups) {
      ctx.fillStyle = g.colour;
      ctx.beginPath();
      for (const i of g.members) {
        const [x, y] = toScreen(i);
        if (x < -radius || y < -radius || x > width + radius || y > height + radius) continue;
        ctx.moveTo(x + radius, y);
        ctx.arc(x, y, radius, 0, 2 * Math.PI);
        count++;
      }
      ctx.fill();
    }
    ctx.lineWidth = 2;
    for (const [i, colour] of [...ends.map((e) => [e, "#d62728"]), [hover, "#000"]]) {
      if (i < 0) continue;
      const [x, y] = toScreen(i);
      ctx.strokeStyle = colour;
      ctx.beginPath(); ctx.arc(x, y, radius + 4, 0, 2 * Math.PI); ctx.stroke();
    }
    drawn = count;
  }
  function schedule() {
    if (!pending) { pending = true; requestAnimationFrame(draw); }
  }
  function pick(sx, sy, px = 8) {  // the nearest point within px screen pixels of (sx, sy), or -1
    const x = (sx - width / 2) / view.scale + view.cx, y = (height / 2 - sy) / view.scale + view.cy, r = px / view.scale;
    const c0 = cellOf(x - r, minX, spanX), c1 = cellOf(x + r, minX, spanX), r0 = cellOf(y - r, minY, spanY), r1 = cellOf(y + r, minY, spanY);
    let best = -1, bestD = r * r;
    for (let row = r0; row <= r1; row++) for (let col = c0; col <= c1; col++) {
      const cell = row * G + col;
      for (let j = cellStart[cell]; j < cellStart[cell + 1]; j++) {
        const i = cellItems[j], dx = xy[2 * i] - x, dy = xy[2 * i + 1] - y, d = dx * dx + dy * dy;
        if (d <= bestD) { bestD = d; best = i; }
      }
    }
    return best;
  }

  // --- panels --------------------------------------------------------------------------------------
  const className = (i) => (labels ? data.classes[labels[i]] ?? String(labels[i]) : "");
  const rank = new Int32Array(n);
  order.forEach((i, r) => { rank[i] = r; });
  function describe(i) {
    const what = labels ? `label ${className(i)}, ` : "";
    return `${what}error ${errors[i].toPrecision(4)} (${rank[i] + 1} of ${n} from the worst)` + (table ? `: ${shares(i)}` : "");
  }
  function show(i) {
    if (i < 0) return;
    if (table) {
      $("row").replaceChildren(rowTable(i));
    } else {
      drawImage($("image"), i);
      drawPixels($("reconstruction"), decode(codeOf(i)));
    }
    $("detail-name").textContent = `#${index[i]}`;
    $("detail-text").textContent = describe(i);
  }
  function interpolate(a, b) {
    const strip = $("strip"), ca = codeOf(a), cb = codeOf(b), code = new Float64Array(k);
    strip.replaceChildren();
    if (table) {  // one row per step, over the columns that differ most between the two ends
      const fa = decode(ca), fb = decode(cb), d = columnErrors(fa, fb);
      const shown = d.map((_, j) => j).sort((x, y) => d[y] - d[x]).slice(0, 4);
      const t = document.createElement("table");
      t.className = "row-values";
      t.innerHTML = "<tr><th>t</th>" + shown.map(() => "<th></th>").join("") + "</tr>";
      shown.forEach((j, m) => { t.rows[0].cells[m + 1].textContent = columns[j].name; });
      for (let s = 0; s < STEPS; s++) {
        const tt = s / (STEPS - 1);
        for (let dd = 0; dd < k; dd++) code[dd] = (1 - tt) * ca[dd] + tt * cb[dd];
        const r = decode(code), tr = t.insertRow();
        tr.insertCell().textContent = tt.toFixed(2);
        for (const j of shown) tr.insertCell().textContent = valueOf(r, j);
      }
      strip.append(t);
      $("interp-text").textContent = `#${index[a]} \u2192 #${index[b]}, decoded in the page (${STEPS} steps)`;
      return;
    }
    for (let s = 0; s < STEPS; s++) {
      const t = s / (STEPS - 1);
      for (let d = 0; d < k; d++) code[d] = (1 - t) * ca[d] + t * cb[d];
      const c = document.createElement("canvas");
      drawPixels(c, decode(code));
      if (s === 0 || s === STEPS - 1) c.className = "end";
      c.title = `t = ${t.toFixed(2)}`;
      strip.append(c);
    }
    $("interp-text").textContent = `#${index[a]} \u2192 #${index[b]}, decoded in the page (${STEPS} steps)`;
  }
  function choose(i) {
    if (i < 0) return;
    ends = ends.length === 1 ? [ends[0], i] : [i];
    show(i);
    if (ends.length === 2) interpolate(ends[0], ends[1]);
    else { $("strip").replaceChildren(); $("interp-text").textContent = `#${index[i]} \u2192 click another point`; }
    for (const li of $("worst").children) li.classList.toggle("selected", ends.includes(Number(li.dataset.i)));
    schedule();
  }
  function legend() {
    const box = $("legend");
    box.replaceChildren();
    if (mode === "label") {
      for (const g of colourGroups) {
        const row = document.createElement("div");
        row.className = "row";
        row.innerHTML = `<span class="swatch" style="background:${g.colour}"></span>`;
        row.append(`${data.classes[g.key] ?? g.key} (${g.members.length})`);
        box.append(row);
      }
      return;
    }
    const bar = document.createElement("canvas");
    bar.className = "ramp"; bar.width = 140; bar.height = 10;
    const b = bar.getContext("2d");
    for (let x = 0; x < 140; x++) { b.fillStyle = ramp(x / 139); b.fillRect(x, 0, 1, 10); }
    const text = document.createElement("div");
    text.textContent = `MSE ${Math.exp(lo).toPrecision(2)} \u2026 ${Math.exp(hi).toPrecision(2)} (log scale)`;
    box.append(bar, text);
  }
  function worstList() {
    const list = $("worst");
    for (const i of order.slice(0, WORST)) {
      const li = document.createElement("li"), c = document.createElement("canvas");
      li.dataset.i = i;
      if (!table) drawImage(c, i);
      li.append(...(table ? [] : [c]), `#${index[i]} ${labels ? className(i) + " " : ""}error ${errors[i].toPrecision(4)}` +
        (table ? `: ${shares(i)}` : ""));
      li.addEventListener("click", () => choose(i));
      list.append(li);
    }
  }

  // --- input: hover, click or tap, drag to pan, wheel or pinch to zoom -----------------------------
  const pointers = new Map();
  let press = null, pinch = null;
  const local = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  function zoomAt(sx, sy, factor) {
    const x = (sx - width / 2) / view.scale + view.cx, y = (height / 2 - sy) / view.scale + view.cy;
    view.scale *= factor;
    view.cx = x - (sx - width / 2) / view.scale; view.cy = y - (height / 2 - sy) / view.scale;
    schedule();
  }
  canvas.addEventListener("pointerdown", (e) => {
    canvas.setPointerCapture(e.pointerId);
    pointers.set(e.pointerId, local(e));
    press = pointers.size === 1 ? { at: local(e), moved: false } : null;
    if (pointers.size === 2) { const [a, b] = [...pointers.values()]; pinch = Math.hypot(a[0] - b[0], a[1] - b[1]); }
  });
  canvas.addEventListener("pointermove", (e) => {
    const [sx, sy] = local(e), tip = $("tip");
    if (pointers.has(e.pointerId)) {
      const [px, py] = pointers.get(e.pointerId);
      pointers.set(e.pointerId, [sx, sy]);
      if (pointers.size === 2 && pinch) {
        const [a, b] = [...pointers.values()], d = Math.hypot(a[0] - b[0], a[1] - b[1]);
        zoomAt((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, d / pinch);
        pinch = d;
        return;
      }
      if (press && Math.hypot(sx - press.at[0], sy - press.at[1]) > 4) press.moved = true;
      if (press && press.moved) { view.cx -= (sx - px) / view.scale; view.cy += (sy - py) / view.scale; schedule(); return; }
    }
    const i = pick(sx, sy);
    if (i !== hover) { hover = i; if (i >= 0) show(i); schedule(); }
    tip.hidden = i < 0;
    if (i >= 0) { tip.textContent = `#${index[i]} ${describe(i)}`; tip.style.left = `${sx + 12}px`; tip.style.top = `${sy + 12}px`; }
  });
  const release = (e) => {
    pointers.delete(e.pointerId);
    if (pointers.size < 2) pinch = null;
    if (press && !press.moved && e.type === "pointerup") choose(pick(...local(e), e.pointerType === "touch" ? 16 : 8));
    press = null;
  };
  canvas.addEventListener("pointerup", release);
  canvas.addEventListener("pointercancel", release);
  canvas.addEventListener("pointerleave", () => { $("tip").hidden = true; if (hover >= 0) { hover = -1; schedule(); } });
  canvas.addEventListener("wheel", (e) => { e.preventDefault(); zoomAt(...local(e), Math.exp(-e.deltaY * 0.0015)); }, { passive: false });
  $("zoom-in").addEventListener("click", () => zoomAt(width / 2, height / 2, 1.5));
  $("zoom-out").addEventListener("click", () => zoomAt(width / 2, height / 2, 1 / 1.5));
  $("reset").addEventListener("click", fit);
  $("colour").addEventListener("change", (e) => { mode = e.target.value; colourGroups = groups(mode); legend(); schedule(); });
  new ResizeObserver(() => { resize(); schedule(); }).observe(canvas);

  // --- start ---------------------------------------------------------------------------------------
  $("title").textContent = `${data.title} \u00b7 ${data.architecture}, ${k}-d codes \u00b7 ${n} points` +
    (n < data.n_total ? ` of ${data.n_total}` : "") + ` \u00b7 map: ${data.map.toUpperCase()} \u00b7 mean MSE ${data.mean_error.toPrecision(4)}`;
  if (table) { $("pair").hidden = true; $("row").hidden = false; }
  resize();
  fit();
  draw();
  legend();
  worstList();
  show(order[0]);
  window.aekitExplore = { n, decode, codeOf, choose, show, draw, pick, screenOf: toScreen, index, errors };  // for tests and benchmarks
  document.body.dataset.points = String(drawn);
  document.body.dataset.drawMs = performance.now().toFixed(0);
  document.body.dataset.ready = "true";
})().catch((err) => {
  document.body.dataset.ready = "error";
  console.error("aekit explore: " + (err && err.stack ? err.stack : err));
});
