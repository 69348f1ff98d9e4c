// The page: files dropped → an in-memory file system → `dice eval` (dice-web.wasm, through
// wasi.js) → the per-label table, an overlay of the chosen slice, CSV/JSON downloads.
"use strict";

const DATA_ENDINGS = [".img", ".img.gz", ".raw", ".raw.gz", ".zraw"];
const KNOWN = [".nii.gz", ".hdr.gz", ".nii", ".hdr", ".nrrd", ".nhdr", ".mha", ".mhd", ".npy", ".png", ".tiff", ".tif"];
const COLUMNS = [["label", "label"], ["dice", "Dice"], ["iou", "IoU"], ["hd95", "HD95 (mm)"], ["nsd", "NSD"],
  ["ref_ml", "reference (ml)"], ["pred_ml", "prediction (ml)"], ["ref_voxels", "reference voxels"], ["pred_voxels", "prediction voxels"]];
const $ = (id) => document.getElementById(id);
const state = { pred: [], ref: [], module: null, csv: null, json: null };

function fail(msg) {
  $("error").textContent += msg + "\n";
  document.body.dataset.errors = (Number(document.body.dataset.errors || 0) + 1).toString();
}
window.addEventListener("error", (e) => fail("page error: " + e.message));
window.addEventListener("unhandledrejection", (e) => fail("page error: " + e.reason));

function fromBase64(text) {
  const raw = atob(text);
  const b = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) b[i] = raw.charCodeAt(i);
  return b;
}

function module() {
  if (!state.module) state.module = new WebAssembly.Module(fromBase64(DICE_WASM_BASE64));
  return state.module;
}

// The file a box's main path is: the one with a known image ending that is not a data file.
function mainFile(list, role) {
  const lower = (f) => f.name.toLowerCase();
  const heads = list.filter((f) => !DATA_ENDINGS.some((e) => lower(f).endsWith(e)) && KNOWN.some((e) => lower(f).endsWith(e)));
  if (heads.length !== 1) {
    throw new Error(`${role}: drop one image (${KNOWN.join(", ")}), with its data file if its header is detached; got ${list.map((f) => f.name).join(", ") || "nothing"}`);
  }
  return `/${role}/${heads[0].name}`;
}

function filesystem() {
  const fs = new Map();
  for (const role of ["pred", "ref"]) for (const f of state[role]) fs.set(`/${role}/${f.name}`, f.bytes);
  return fs;
}

function evalArgs() {
  const args = ["dice", "eval", mainFile(state.pred, "pred"), mainFile(state.ref, "ref"), "--metrics", "dice,iou,hd95,nsd",
    "--tolerance", $("tolerance").value.trim() || "1"];
  const sp = $("spacing").value.trim();
  if (sp) args.push("--spacing", sp);
  if ($("background").checked) args.push("--include-background");
  return args;
}

function dice(args) {
  const r = runWasi(module(), args, filesystem());
  if (r.code !== 0) throw new Error(r.stderr.trim() || `dice exited with status ${r.code}`);
  return r;
}

function cell(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(6).replace(/\.?0+$/, "");
  return String(v);
}

function showTable(json) {
  const c = json.cases[0];
  const head = $("table").tHead, body = $("table").tBodies[0];
  head.innerHTML = ""; body.innerHTML = "";
  const tr = head.insertRow();
  for (const [, title] of COLUMNS) { const th = document.createElement("th"); th.textContent = title; tr.appendChild(th); }
  for (const row of [...c.labels, ...(c.regions || [])]) {
    const r = body.insertRow();
    for (const [key] of COLUMNS) {
      const td = r.insertCell();
      const v = key === "label" ? (row.label ?? row.region) : row[key];
      td.textContent = cell(v);
      if (typeof v === "number") td.dataset.value = String(v);
      td.dataset.key = key;
    }
  }
  $("notes").textContent = (c.notes || []).join("\n");
}

function showOverlay(k) {
  const args = [...evalArgs().slice(0, 4), "--metrics", "dice", "--overlay", "/out/overlay.png", "--slice", String(k)];
  const sp = $("spacing").value.trim();
  if (sp) args.push("--spacing", sp);
  const r = dice(args);
  const png = r.files.get("/out/overlay.png");
  $("overlay").src = URL.createObjectURL(new Blob([png], { type: "image/png" }));
  $("overlay").dataset.bytes = String(png.length);
  $("slice-num").textContent = `${k}`;
}

function evaluate() {
  $("error").textContent = "";
  try {
    const t0 = performance.now();
    const r = dice([...evalArgs(), "--format", "json"]);
    const ms = performance.now() - t0;
    state.json = r.stdout; state.csv = null;
    $("json-out").textContent = r.stdout;
    showTable(JSON.parse(r.stdout));
    $("status").textContent = `evaluated in ${ms.toFixed(0)} ms`;
    $("status").dataset.ms = ms.toFixed(1);
    const slices = JSON.parse(dice(["dice-web", "slices", mainFile(state.ref, "ref")]).stdout).slices;
    $("slice").max = String(slices - 1);
    $("slice").value = String(Math.floor(slices / 2));
    $("results").hidden = false;
    showOverlay(Math.floor(slices / 2));
  } catch (e) {
    fail(String(e.message || e));
  }
}

function csv() {
  if (state.csv === null) state.csv = dice([...evalArgs(), "--format", "csv"]).stdout;
  return state.csv;
}

function download(name, text, type) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  a.click();
}

async function take(role, fileList) {
  state[role] = await Promise.all([...fileList].map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
  $(`names-${role}`).textContent = state[role].map((f) => `${f.name} (${f.bytes.length} bytes)`).join(", ");
  $("run").disabled = !(state.pred.length && state.ref.length);
}

for (const role of ["pred", "ref"]) {
  const box = $(`drop-${role}`);
  box.addEventListener("dragover", (e) => { e.preventDefault(); box.classList.add("over"); });
  box.addEventListener("dragleave", () => box.classList.remove("over"));
  box.addEventListener("drop", (e) => { e.preventDefault(); box.classList.remove("over"); take(role, e.dataTransfer.files); });
  $(`file-${role}`).addEventListener("change", (e) => take(role, e.target.files));
}
$("run").addEventListener("click", () => { $("status").textContent = "evaluating…"; setTimeout(evaluate, 0); });
$("slice").addEventListener("change", (e) => { try { showOverlay(Number(e.target.value)); } catch (err) { fail(String(err.message || err)); } });
$("dl-csv").addEventListener("click", () => { try { download("dice.csv", csv(), "text/csv"); } catch (e) { fail(String(e.message || e)); } });
$("dl-json").addEventListener("click", () => download("dice.json", state.json, "application/json"));

// Tests (tests/browser.rs): `?test=NAME.js` names a script beside the page that sets
// DICE_TEST = {pred: [{name, base64}], ref: [...], tolerance, spacing}; the page evaluates it,
// fills #csv-out, and marks the body done.
const test = new URLSearchParams(location.search).get("test");
if (test && /^[\w.-]+\.js$/.test(test)) {
  const s = document.createElement("script");
  s.src = test;
  s.onload = () => {
    const unb = (f) => ({ name: f.name, bytes: fromBase64(f.base64) });
    state.pred = DICE_TEST.pred.map(unb); state.ref = DICE_TEST.ref.map(unb);
    if (DICE_TEST.tolerance) $("tolerance").value = DICE_TEST.tolerance;
    if (DICE_TEST.spacing) $("spacing").value = DICE_TEST.spacing;
    evaluate();
    try { $("csv-out").textContent = csv(); } catch (e) { fail(String(e.message || e)); }
    document.body.dataset.done = "1";
  };
  s.onerror = () => fail(`cannot load ${test}`);
  document.head.appendChild(s);
}
