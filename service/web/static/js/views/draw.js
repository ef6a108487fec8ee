// Draw a digit: a canvas for mouse, pen and touch; as the person draws, the digit, the ten
// probabilities, and the 28x28 image the model saw. A photo can be uploaded or pasted too.

import { ApiError, get, post, request } from "../api.js";
import { h, percent, score } from "../format.js";

const PREDICT_EVERY_MS = 150;

export async function render(main, params) {
  const models = await get("/models").catch(() => ({ data: [] }));
  const picker = h("select", { id: "model", "aria-label": "model" },
    h("option", { value: "best" }, "best (highest test accuracy)"),
    h("option", { value: "latest" }, "latest (most recently finished)"),
    [...new Set(models.data.flatMap((m) => m.aliases))].sort().map((a) => h("option", { value: a }, `alias: ${a}`)),
    models.data.map((m) => h("option", { value: m.experiment_id }, `${m.name} · ${score(m.test_accuracy)}`)));
  if (params.model) picker.value = params.model;
  const pad = h("canvas", { class: "pad", width: 280, height: 280, tabindex: 0, "aria-label": "drawing pad: draw a digit with mouse, pen or finger" });
  const seen = h("canvas", { class: "seen", width: 28, height: 28, "aria-label": "the 28 by 28 image the model saw" });
  const answer = h("div", { "aria-live": "polite", id: "answer" }, h("p", { class: "muted" }, "Draw a digit in the box."));
  const file = h("input", { type: "file", accept: "image/png,image/jpeg", "aria-label": "photo of a digit" });
  const status = h("p", { class: "error", role: "alert" });
  // On a phone the answer card is below the pad: the digit is repeated beside "Clear".
  const quick = h("output", { class: "quick", id: "quick", "aria-hidden": "true" });

  main.replaceChildren(h("h1", {}, "Draw a digit"),
    ...(models.data.length ? [] : [h("div", { class: "notice" }, "No trained model yet: train one first, then draw here.")]),
    h("div", { class: "draw" },
      h("div", { class: "card" },
        h("div", { class: "row", style: "margin-bottom:0.6rem" }, h("label", {}, "Model", picker)),
        pad,
        h("div", { class: "row", style: "margin-top:0.6rem" },
          h("button", { type: "button", onclick: clear }, "Clear"), quick,
          h("label", {}, "or a photo (upload or paste)", file))),
      h("div", { class: "card" }, answer, status),
      h("div", { class: "card" }, h("h2", {}, "What the model saw"), seen,
        h("p", { class: "muted" }, "28x28, light on black, centred by mass: MNIST’s own normalisation."))));

  const ctx = pad.getContext("2d");
  // What the answer is about: the strokes on the pad, or the photo last uploaded or pasted.
  let photo = null;
  function blank() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    inked = false;
    answer.replaceChildren(h("p", { class: "muted" }, "Draw a digit in the box."));
    quick.textContent = "";
    seen.getContext("2d").clearRect(0, 0, 28, 28);
  }
  function clear() {
    blank();
    photo = null;
    file.value = "";
    status.textContent = "";
  }
  let inked = false;
  clear();

  let drawing = null;
  let last = 0;
  let pending = false;
  let again = false;
  const point = (e) => {
    const box = pad.getBoundingClientRect();
    return [((e.clientX - box.left) * pad.width) / box.width, ((e.clientY - box.top) * pad.height) / box.height];
  };
  pad.addEventListener("pointerdown", (e) => {
    pad.setPointerCapture(e.pointerId);
    photo = null;
    drawing = point(e);
    stroke(drawing, drawing, e.pressure);
  });
  pad.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const next = point(e);
    stroke(drawing, next, e.pressure);
    drawing = next;
    if (performance.now() - last > PREDICT_EVERY_MS) predict();
  });
  const end = () => { if (drawing) { drawing = null; predict(); } };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);
  pad.addEventListener("keydown", (e) => { if (e.key === "Delete" || e.key === "Backspace") clear(); });
  picker.addEventListener("change", () => (photo ? upload(photo) : inked && predict()));

  function stroke([x0, y0], [x1, y1], pressure) {
    ctx.strokeStyle = "#111";
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = 18 * (pressure && pressure !== 0.5 ? 0.6 + pressure : 1);
    ctx.beginPath();
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    ctx.stroke();
    inked = true;
  }

  // One request in flight; a stroke that arrives meanwhile is answered right after.
  async function predict() {
    if (!inked) return;
    if (pending) { again = true; return; }
    pending = true;
    last = performance.now();
    try {
      show(await post("/predict", { image_base64: pad.toDataURL("image/png"), model: picker.value, return_input: true }));
    } catch (error) {
      fail(error);
    } finally {
      pending = false;
      if (again) { again = false; predict(); }
    }
  }

  // The photo is shown in the pad (whole, on white), so the answer is next to what it is about.
  async function showPhoto(blob) {
    blank();
    photo = blob;
    const image = await createImageBitmap(blob).catch(() => null);
    if (!image) return;
    const scale = Math.min(pad.width / image.width, pad.height / image.height);
    const [w, h_] = [image.width * scale, image.height * scale];
    ctx.drawImage(image, (pad.width - w) / 2, (pad.height - h_) / 2, w, h_);
  }

  async function upload(blob) {
    const form = new FormData();
    form.append("file", blob, blob.name || "pasted.png");
    form.append("model", picker.value);
    form.append("return_input", "true");
    try {
      const body = await request("POST", "/predict/upload", { form });
      show({ ...body.predictions[0], model: body.model });
    } catch (error) {
      fail(error);
    }
  }
  const fromPhoto = async (blob) => { await showPhoto(blob); await upload(blob); };
  file.addEventListener("change", () => file.files[0] && fromPhoto(file.files[0]));
  const paste = (e) => {
    const item = [...(e.clipboardData?.items || [])].find((i) => i.type.startsWith("image/"));
    if (item) fromPhoto(item.getAsFile());
  };
  document.addEventListener("paste", paste);

  // An answer about an earlier drawing or photo would read as the answer to this one.
  function fail(error) {
    answer.replaceChildren(h("p", { class: "muted" }, "No answer."));
    quick.textContent = "";
    seen.getContext("2d").clearRect(0, 0, 28, 28);
    status.textContent = error instanceof ApiError ? error.message : `Could not ask the model: ${error.message}`;
  }

  function show(prediction) {
    status.textContent = "";
    const best = prediction.digit;
    quick.textContent = `reads ${best} (${percent(prediction.probabilities[best])})`;
    answer.replaceChildren(
      h("p", { style: "margin:0" }, "It reads"), h("p", { class: "digit", id: "digit" }, best),
      h("p", { class: "muted" }, `${percent(prediction.probabilities[best])} sure · model ${prediction.model.name}`),
      h("div", { class: "bars", id: "bars" }, prediction.probabilities.flatMap((p, d) => [
        h("span", {}, d),
        h("div", { class: `bar${d === best ? " best" : ""}`, role: "meter", "aria-valuemin": 0, "aria-valuemax": 1, "aria-valuenow": p.toFixed(4), "aria-label": `digit ${d}` },
          h("span", { style: `width:${(100 * p).toFixed(1)}%` })),
        h("span", { class: "num" }, p.toFixed(4))])));
    if (prediction.input) {
      const image = seen.getContext("2d").createImageData(28, 28);
      prediction.input.flat().forEach((v, i) => {
        const grey = Math.round(255 * v);
        image.data.set([grey, grey, grey, 255], i * 4);
      });
      seen.getContext("2d").putImageData(image, 0, 0);
    }
  }
  return () => document.removeEventListener("paste", paste);
}
