"use strict";
// crowdwatch live view: cameras, counts, sparklines, and the shape editor. No inline code (strict CSP).

const api = (path) => fetch(path, { credentials: "same-origin" }).then((r) => {
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
});
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const fmt = (v) => (v === null || v === undefined ? "–" : Number(v).toFixed(Number.isInteger(v) ? 0 : 1));

const cards = {};   // camera id -> {card parts}
// A browser keeps at most 6 connections to one server: the first cameras stream (MJPEG, every
// processed frame), the others, and any stream the server refuses (503: too many viewers), poll.
const MAX_STREAMS = 4;
let layout = [];    // /api/v1/cameras

function showError(message) {
  const e = document.getElementById("error");
  e.textContent = message || "";
  e.hidden = !message;
}

function buildCard(cam, index) {
  const card = el("section", "camera");
  card.dataset.camera = cam.id;
  const title = el("h2");
  title.append(el("span", "name", cam.id));
  const status = el("span", "status", "…");
  title.append(status);
  const edit = el("button", "edit", "Edit shapes");
  edit.type = "button";
  edit.addEventListener("click", () => openEditor(cam));
  title.append(edit);
  card.append(title);
  const reason = el("div", "reason");
  card.append(reason);
  const img = el("img", "live");
  img.alt = `latest frame of ${cam.id}`;
  img.dataset.mode = index < MAX_STREAMS ? "stream" : "poll";
  if (img.dataset.mode === "stream") img.src = `/api/v1/cameras/${cam.id}/stream.mjpeg`;
  img.addEventListener("error", () => { img.dataset.mode = "poll"; });
  card.append(img);
  const counts = el("div", "counts");
  const raw = el("span", "", "count ");
  const rawValue = el("b", "count", "–");
  raw.append(rawValue);
  const smooth = el("span", "", "smoothed ");
  const smoothValue = el("b", "smoothed", "–");
  smooth.append(smoothValue);
  counts.append(raw, smooth);
  card.append(counts);
  const zoneRows = {};
  if (cam.zones.length) {
    const table = el("table", "zones");
    const head = el("tr");
    for (const h of ["zone", "count", "smoothed", "alert"]) head.append(el("th", "", h));
    table.append(head);
    for (const zone of cam.zones) {
      const row = el("tr");
      row.dataset.zone = zone.id;
      const cells = { count: el("td", "zcount", "–"), smoothed: el("td", "zsmoothed", "–"), alert: el("td", "zalert", "–") };
      row.append(el("td", "", zone.id), cells.count, cells.smoothed, cells.alert);
      table.append(row);
      zoneRows[zone.id] = { row, ...cells };
    }
    card.append(table);
  }
  const spark = el("canvas", "spark");
  spark.width = 460;
  spark.height = 50;
  spark.title = "people, last 30 minutes (grey: raw, blue: smoothed)";
  card.append(spark);
  let heatmap = null;
  if (cam.heatmap) {
    heatmap = el("img", "heatmap");
    heatmap.alt = `heatmap of ${cam.id}`;
    heatmap.addEventListener("error", () => { heatmap.hidden = true; });
    heatmap.addEventListener("load", () => { heatmap.hidden = false; });
    card.append(heatmap);
  }
  document.getElementById("cameras").append(card);
  cards[cam.id] = { card, status, reason, img, rawValue, smoothValue, zoneRows, spark, heatmap };
}

async function refreshCounts() {
  try {
    const data = await api("/api/v1/counts");
    showError("");
    document.getElementById("clock").textContent = new Date(data.time * 1000).toLocaleTimeString();
    for (const [id, c] of Object.entries(data.cameras)) {
      const card = cards[id];
      if (!card) continue;
      card.status.textContent = c.up ? "up" : "down";
      card.status.className = `status ${c.up ? "up" : "down"}`;
      card.card.dataset.up = c.up ? "1" : "0";
      card.reason.textContent = c.up ? "" : (c.reason || "");
      if (card.img.dataset.mode === "poll" && c.seq > 0 && card.card.dataset.seq !== String(c.seq)) {
        card.img.src = `/api/v1/cameras/${id}/frame.jpg?seq=${c.seq}`;
      }
      card.card.dataset.seq = c.seq;
      card.rawValue.textContent = fmt(c.count);
      card.smoothValue.textContent = fmt(c.smoothed);
      for (const [zone, z] of Object.entries(c.zones || {})) {
        const row = card.zoneRows[zone];
        if (!row) continue;
        row.count.textContent = fmt(z.count);
        row.smoothed.textContent = fmt(z.smoothed);
        row.alert.textContent = z.alert ? "ALERT" : "ok";
        row.row.classList.toggle("alerting", Boolean(z.alert));
      }
    }
  } catch (err) {
    showError(String(err));
  }
}

function drawSpark(canvas, points) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (points.length < 2) return;
  const t1 = points[points.length - 1][0];
  const t0 = Math.max(points[0][0], t1 - 1800);  // the last 30 minutes, or what there is of them
  const span = Math.max(t1 - t0, 1);
  const max = Math.max(1, ...points.map((p) => Math.max(p[1], p[2])));
  const x = (t) => ((t - t0) / span) * (canvas.width - 2) + 1;
  const y = (v) => canvas.height - 2 - (v / max) * (canvas.height - 4);
  for (const [index, colour] of [[1, "#aaa"], [2, "#26c"]]) {
    ctx.strokeStyle = colour;
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(x(p[0]), y(p[index])) : ctx.moveTo(x(p[0]), y(p[index]))));
    ctx.stroke();
  }
  ctx.fillStyle = "#555";
  ctx.font = "10px sans-serif";
  ctx.fillText(`max ${fmt(max)}, last ${Math.max(1, Math.round(span / 60))} min`, 2, 10);
}

async function refreshHistory() {
  for (const cam of layout) {
    try {
      const data = await api(`/api/v1/cameras/${cam.id}/history`);
      drawSpark(cards[cam.id].spark, data.points);
    } catch (err) {
      showError(String(err));
    }
  }
}

function refreshHeatmaps() {
  for (const cam of layout) {
    const img = cards[cam.id].heatmap;
    if (img) img.src = `/api/v1/cameras/${cam.id}/heatmap.jpg?t=${Date.now()}`;
  }
}

// ---------------------------------------------------------------- editor
const editor = { cam: null, image: null, shapes: [], current: [] };

function slug(text, fallback) {
  const s = String(text || "").toLowerCase().replace(/[^a-z0-9_-]+/g, "-").replace(/^[-_]+/, "").slice(0, 63);
  return s || fallback;
}

function nextId(kind) {
  const used = new Set(editor.shapes.filter((s) => s.kind === kind).map((s) => s.id));
  for (let n = 1; ; n += 1) if (!used.has(`${kind}-${n}`)) return `${kind}-${n}`;
}

function openEditor(cam) {
  editor.cam = cam;
  editor.current = [];
  editor.shapes = [
    ...cam.zones.map((z) => ({ kind: "zone", id: z.id, points: z.polygon,
      alert: z.high === null ? null : { high: z.high, low: z.low, for_s: z.for_s } })),
    ...cam.exclude.map((p) => ({ kind: "exclude", points: p })),
    ...cam.lines.map((l) => ({ kind: "line", id: l.id, points: l.points, in: l.in, out: l.out })),
  ];
  document.getElementById("editor-camera").textContent = cam.id;
  document.getElementById("editor").hidden = false;
  const image = new Image();
  image.addEventListener("load", () => {
    editor.image = image;
    const canvas = document.getElementById("canvas");
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    redraw();
    canvas.scrollIntoView();
  });
  image.src = `/api/v1/cameras/${cam.id}/frame.jpg?raw=1&t=${Date.now()}`;
  updateYaml();
}

function redraw() {
  const canvas = document.getElementById("canvas");
  const ctx = canvas.getContext("2d");
  if (editor.image) ctx.drawImage(editor.image, 0, 0);
  const colours = { zone: "#0c0", exclude: "#999", line: "#f0f" };
  const width = Math.max(2, canvas.width / 320);
  const path = (points, close, colour) => {
    ctx.strokeStyle = colour;
    ctx.lineWidth = width;
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
    if (close) ctx.closePath();
    ctx.stroke();
    ctx.fillStyle = colour;
    for (const p of points) ctx.fillRect(p[0] - width, p[1] - width, 2 * width, 2 * width);
  };
  for (const s of editor.shapes) path(s.points, s.kind !== "line", colours[s.kind]);
  if (editor.current.length) path(editor.current, false, "#f80");
}

// A slug as YAML: quoted where YAML would read it as something else (on, no, null, 12, 1e3, ...).
const YAML_WORDS = /^(y|n|yes|no|on|off|true|false|null)$/;
const name = (s) => (/^[a-z][a-z0-9_-]*$/.test(s) && !YAML_WORDS.test(s) ? s : `"${s}"`);
const pt = (p) => `[${p[0]}, ${p[1]}]`;
const pts = (points) => `[${points.map(pt).join(", ")}]`;

function yamlBlock() {
  const zones = editor.shapes.filter((s) => s.kind === "zone");
  const excl = editor.shapes.filter((s) => s.kind === "exclude");
  const lines = editor.shapes.filter((s) => s.kind === "line");
  const out = [`# camera ${editor.cam.id}: replace its zones, exclude and lines with these (source-frame pixels)`];
  out.push(zones.length ? "zones:" : "zones: []");
  for (const z of zones) {
    out.push(`  - id: ${name(z.id)}`, `    polygon: ${pts(z.points)}`);
    if (z.alert) out.push(`    alert: {high: ${z.alert.high}, low: ${z.alert.low}, for_s: ${z.alert.for_s}}`);
  }
  out.push(excl.length ? "exclude:" : "exclude: []");
  for (const e of excl) out.push(`  - polygon: ${pts(e.points)}`);
  out.push(lines.length ? "lines:" : "lines: []");
  for (const l of lines) {
    out.push(`  - id: ${name(l.id)}`, `    points: ${pts(l.points)}`, `    in: ${name(l.in)}`, `    out: ${name(l.out)}`);
  }
  return `${out.join("\n")}\n`;
}

function updateYaml() {
  document.getElementById("yaml").value = yamlBlock();
  document.getElementById("verdict").textContent = "";
  document.getElementById("errors").replaceChildren();
  redraw();
}

function finishShape() {
  const mode = document.getElementById("mode").value;
  const need = mode === "line" ? 2 : 3;
  if (editor.current.length < need) return;
  const idInput = document.getElementById("shape-id");
  const shape = { kind: mode, points: editor.current };
  if (mode !== "exclude") shape.id = slug(idInput.value, nextId(mode));
  if (mode === "zone") shape.alert = null;
  if (mode === "line") {
    shape.in = slug(document.getElementById("line-in").value, "inside");
    shape.out = slug(document.getElementById("line-out").value, "outside");
  }
  editor.shapes.push(shape);
  editor.current = [];
  idInput.value = "";
  updateYaml();
}

function onCanvasClick(event) {
  if (!editor.image) return;
  const canvas = event.target;
  const rect = canvas.getBoundingClientRect();
  const x = Math.round(((event.clientX - rect.left) * canvas.width) / rect.width);
  const y = Math.round(((event.clientY - rect.top) * canvas.height) / rect.height);
  editor.current.push([Math.min(Math.max(x, 0), canvas.width), Math.min(Math.max(y, 0), canvas.height)]);
  if (document.getElementById("mode").value === "line" && editor.current.length === 2) finishShape();
  else redraw();
}

async function checkYaml() {
  const verdict = document.getElementById("verdict");
  const list = document.getElementById("errors");
  verdict.textContent = "checking…";
  list.replaceChildren();
  try {
    const reply = await fetch("/api/v1/validate", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ camera: editor.cam.id, yaml: document.getElementById("yaml").value }),
    });
    const data = await reply.json();
    if (!reply.ok) throw new Error(data.error || `HTTP ${reply.status}`);
    verdict.textContent = data.valid ? "valid" : `${data.errors.length} error(s)`;
    verdict.className = data.valid ? "valid" : "invalid";
    for (const e of data.errors) list.append(el("li", "", `${e.path || "<top level>"}: ${e.message}`));
  } catch (err) {
    verdict.textContent = String(err);
    verdict.className = "invalid";
  }
}

function setupEditor() {
  document.getElementById("canvas").addEventListener("click", onCanvasClick);
  document.getElementById("finish").addEventListener("click", finishShape);
  document.getElementById("undo").addEventListener("click", () => { editor.current.pop(); redraw(); });
  document.getElementById("clear").addEventListener("click", () => { editor.shapes = []; editor.current = []; updateYaml(); });
  document.getElementById("close").addEventListener("click", () => { document.getElementById("editor").hidden = true; });
  document.getElementById("check").addEventListener("click", checkYaml);
}

async function main() {
  setupEditor();
  try {
    layout = (await api("/api/v1/cameras")).cameras;
  } catch (err) {
    showError(String(err));
    return;
  }
  layout.forEach(buildCard);
  document.body.dataset.ready = "1";
  refreshCounts();
  refreshHistory();
  refreshHeatmaps();
  setInterval(refreshCounts, 1000);
  setInterval(refreshHistory, 10000);
  setInterval(refreshHeatmaps, 30000);
}

main();
