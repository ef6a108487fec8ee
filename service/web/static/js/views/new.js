// New experiment: start from a notebook net or a copy, edit layers, optimiser and fit; the
// summary comes live from POST /experiments/validate, and each 422 shows beside its field.

import { ApiError, config, get, post, request } from "../api.js";
import { h } from "../format.js";
import { FIT, LAYERS, OPTIMIZERS } from "../spec-fields.js";
import { summaryTable } from "./experiment.js";

const PRESET_NAMES = { leaky_relu: "LeakyReLU net", batchnorm: "BatchNormalization net", dropout: "Dropout net" };
const DRY_RUN_DELAY_MS = 400;

export async function render(main, params) {
  let spec;
  const source = params.from ? await get(`/experiments/${params.from}`) : null;
  const shown = source ? null : params.preset || "leaky_relu";
  if (source) {
    spec = { name: `${source.name} (copy)`, description: source.description, tags: source.tags, ...structuredClone(source.spec) };
  } else {
    spec = { name: "", ...structuredClone(config.presets[shown]) };
  }
  if (typeof spec.compile.optimizer === "string") spec.compile.optimizer = { type: spec.compile.optimizer };

  // "Enter this into ...": an open challenge's entries are dry-run and submitted through it,
  // so its rules are checked as the learner types (each broken rule beside its field).
  const open = (await get("/challenges").catch(() => ({ data: [] }))).data.filter((c) => c.open);
  let challenge = open.find((c) => c.id === params.challenge) || null;
  const target = () => (challenge ? `/challenges/${challenge.id}/entries` : "/experiments");
  const enterInto = open.length ? h("label", { for: "f-challenge" }, "Train it as",
    h("select", { id: "f-challenge", onchange: (e) => { challenge = open.find((c) => c.id === e.target.value) || null; dryRun(); } },
      h("option", { value: "" }, "an experiment of my own"),
      open.map((c) => h("option", { value: c.id, selected: challenge?.id === c.id }, `an entry of “${c.name}”`)))) : null;

  const form = h("form", { id: "new-experiment", novalidate: true });
  const summaryBox = h("div", { "aria-live": "polite" });
  const formError = h("div", { role: "alert" });
  let timer = null;
  let sequence = 0;

  main.replaceChildren(h("h1", {}, "New experiment"),
    h("div", { class: "card" }, h("h2", {}, "Start from"),
      h("div", { class: "row" }, Object.entries(PRESET_NAMES).map(([key, label]) =>
        h("button", { type: "button", "data-preset": key, "aria-pressed": String(shown === key),
          onclick: () => { location.hash = `#/new?preset=${key}`; } }, label)),
        h("span", { class: "muted" }, source ? ["Editing a copy of ", h("a", { href: `#/experiments/${source.id}` }, source.name), "."]
          : "or “Edit a copy” on any experiment."))),
    fromNotebook(),
    // Not null: replaceChildren, unlike h(), writes a null child as the text "null".
    enterInto ? h("div", { class: "card" }, enterInto) : "",
    h("div", { class: "split" }, h("div", { class: "card" }, form), h("div", { class: "card sticky" }, h("h2", {}, "Summary (dry run)"), summaryBox)));

  // A pasted Keras cell or a dropped .ipynb / .py: read by the service (never run), what it read
  // shown before anything is queued; one model loads into the form, a notebook's are queued whole.
  function fromNotebook() {
    const code = h("textarea", { id: "f-code", rows: 5, spellcheck: "false", "aria-label": "Keras code",
      placeholder: "model = keras.Sequential([...])\nmodel.compile(...)\nmodel.fit(...)" });
    const file = h("input", { id: "f-notebook", type: "file", accept: ".ipynb,.py", "aria-label": ".ipynb or .py file" });
    const shownRead = h("div", { id: "code-read", "aria-live": "polite" });
    async function read(send) {
      shownRead.replaceChildren(h("p", { class: "muted" }, "Reading…"));
      try {
        shownRead.replaceChildren(describe(await send(true)));
      } catch (error) {
        shownRead.replaceChildren(h("div", { class: "notice bad", role: "alert" }, error.message));
      }
    }
    const sendCode = (text) => (dryRun) => post(`/experiments/from-code?dry_run=${dryRun}`, { code: text });
    const sendNotebook = (upload) => (dryRun) => {
      const body = new FormData();
      body.append("file", upload);
      return request("POST", `/notebooks?dry_run=${dryRun}`, { form: body });
    };
    let resend = null;
    function take(upload) {
      if (upload.name.endsWith(".ipynb")) resend = sendNotebook(upload);
      else return upload.text().then((text) => { code.value = readText = text; resend = sendCode(text); read(resend); });
      read(resend);
    }
    let readText = "";
    code.addEventListener("change", () => {
      if (!code.value.trim() || code.value === readText) return;  // a blur after a read
      readText = code.value;
      resend = sendCode(code.value);
      read(resend);
    });
    file.addEventListener("change", () => { if (file.files[0]) take(file.files[0]); });
    const zone = h("div", { class: "card drop", id: "from-notebook" }, h("h2", {}, "From a notebook"),
      h("p", { class: "muted" }, "Paste a Keras cell or drop an .ipynb here: it is read, never run."), code,
      h("div", { class: "row" }, file), shownRead);
    zone.addEventListener("dragover", (event) => event.preventDefault());
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      const upload = event.dataTransfer.files[0];
      if (upload) take(upload);
    });

    function describe(answer) {
      const items = answer.experiments.map((item) => h("li", {}, `${item.name}: `,
        `${item.summary.total_params.toLocaleString("en")} parameters, ${item.spec.layers.length} layers, `,
        `${item.spec.compile.optimizer.type}, ${item.spec.fit.epochs} epochs`,
        item.notes.length ? h("span", { class: "muted" }, ` (${item.notes.join("; ")})`) : null));
      const skipped = answer.skipped.map((s) => h("li", { class: "muted" },
        `${s.cell ? `cell ${s.cell}, ` : ""}line ${s.line}: `, h("code", {}, s.code), ` (${s.why})`));
      const actions = answer.experiments.length === 1
        ? h("button", { type: "button", onclick: () => {
          const item = answer.experiments[0];
          spec = { name: item.name, description: item.description, tags: item.tags, ...structuredClone(item.spec) };
          draw(); dryRun();
        } }, "Load it into the form")
        : h("button", { type: "button", class: "primary", onclick: async () => {
          try {
            const queued = await resend(false);
            location.hash = `#/experiments?tag=${encodeURIComponent(queued.notebook)}`;
          } catch (error) {
            shownRead.replaceChildren(h("div", { class: "notice bad", role: "alert" }, error.message));
          }
        } }, `Queue all ${answer.experiments.length}`);
      return h("div", {}, h("p", {}, "Read:"), h("ul", {}, items),
        skipped.length ? [h("p", {}, "Skipped:"), h("ul", {}, skipped)] : null, actions);
    }
    return zone;
  }

  function field(def, value, loc, onChange) {
    const id = `f-${loc.join("-")}`;
    let input;
    if (def.kind === "choice") {
      input = h("select", { id }, def.options.map((o) => h("option", { value: o, selected: (value ?? def.default ?? "") === o }, o || def.empty)));
    } else if (def.kind === "bool") {
      input = h("input", { id, type: "checkbox", checked: value ?? def.default });
    } else if (def.kind === "shape") {
      input = h("input", { id, type: "text", value: (value ?? def.default).join(", "), size: 10 });
    } else if (def.kind === "json") {
      const shown = value ?? def.default;
      input = h("input", { id, type: "text", class: "json", value: shown == null ? "" : JSON.stringify(shown), size: def.size || 24,
        placeholder: def.placeholder || "", spellcheck: "false" });
    } else {
      input = h("input", { id, type: "number", value: value ?? def.default ?? "", step: def.kind === "int" ? 1 : def.step || "any",
        min: def.min, max: def.max, placeholder: def.empty || "" });
    }
    input.dataset.loc = loc.join(".");
    input.addEventListener("change", () => {
      let v;
      if (def.kind === "bool") v = input.checked;
      else if (def.kind === "choice") v = input.value || undefined;
      else if (def.kind === "shape") v = input.value.split(/[ ,x]+/).filter(Boolean).map(Number);
      else if (def.kind === "json") {
        if (input.value.trim() === "") v = undefined;
        else {
          try {
            v = JSON.parse(input.value);
          } catch {
            showErrors(new ApiError(422, { details: [{ loc: loc.map(String), msg: 'not JSON: write e.g. {"type": "l2", "l2": 0.01} or a number' }] }));
            return;
          }
        }
      } else v = input.value === "" ? undefined : def.kind === "int" ? parseInt(input.value, 10) : parseFloat(input.value);
      onChange(v);
      dryRun();
    });
    return h("label", { class: def.kind === "bool" ? "check" : "", for: id }, def.kind === "bool" ? [input, def.name] : [def.name, input]);
  }

  const setter = (object, key) => (v) => { if (v === undefined) delete object[key]; else object[key] = v; };

  function layerRow(layer, index) {
    const types = Object.keys(LAYERS);
    const type = h("select", { "data-loc": `layers.${index}.type`, "aria-label": `layers[${index}] type`,
      onchange: (e) => {
        const fresh = { type: e.target.value };
        for (const def of LAYERS[fresh.type]) if (def.default != null && def.name !== "activation") fresh[def.name] = structuredClone(def.default);
        spec.layers[index] = fresh;
        draw(); dryRun();
      } }, (types.includes(layer.type) ? types : [layer.type, ...types]).map((t) => h("option", { value: t, selected: t === layer.type }, t)));
    const move = (to) => { const [l] = spec.layers.splice(index, 1); spec.layers.splice(to, 0, l); draw(); dryRun(); focusLayer(to); };
    return h("div", { class: "layer", "data-index": index, "data-loc": `layers.${index}` },
      // Numbered as the spec, the summary and every error message number them: layers[0] first.
      h("span", { class: "index", title: `layers[${index}]` }, `[${index}]`), h("label", {}, "type", type),
      (LAYERS[layer.type] || []).map((def) => field(def, layer[def.name], ["layers", index, def.name], setter(layer, def.name))),
      // The three buttons wrap together, to the right, when the row is full.
      h("span", { class: "layer-actions" },
        h("button", { type: "button", class: "icon", "aria-label": `move layers[${index}] up`, disabled: index === 0, onclick: () => move(index - 1) }, "↑"),
        h("button", { type: "button", class: "icon", "aria-label": `move layers[${index}] down`, disabled: index === spec.layers.length - 1, onclick: () => move(index + 1) }, "↓"),
        h("button", { type: "button", class: "icon danger", "aria-label": `remove layers[${index}]`, onclick: () => { spec.layers.splice(index, 1); draw(); dryRun(); } }, "✕")));
  }

  function focusLayer(index) {
    form.querySelector(`.layer[data-index="${index}"] select`)?.focus();
  }

  function draw() {
    const optimizer = spec.compile.optimizer;
    const optimizerType = h("select", { "data-loc": "compile.optimizer.type", "aria-label": "optimizer",
      onchange: (e) => { spec.compile.optimizer = { type: e.target.value }; draw(); dryRun(); } },
      Object.keys(OPTIMIZERS).map((t) => h("option", { value: t, selected: t === optimizer.type }, t)));
    const name = h("input", { id: "f-name", type: "text", value: spec.name || "", required: true, "data-loc": "name", placeholder: "e.g. leaky-relu-sgd",
      onchange: (e) => { spec.name = e.target.value; dryRun(); } });
    const tags = h("input", { id: "f-tags", type: "text", value: (spec.tags || []).join(", "), "data-loc": "tags", placeholder: "e.g. dropout, class-3",
      onchange: (e) => { spec.tags = e.target.value.split(",").map((t) => t.trim()).filter(Boolean); dryRun(); } });
    form.replaceChildren(
      h("div", { class: "row" }, h("label", { for: "f-name" }, "Name", name), h("label", { for: "f-tags" }, "Tags (comma-separated)", tags)),
      h("h2", { style: "margin-top:1rem" }, "Layers"),
      h("div", { id: "layers", "data-loc": "layers" }, spec.layers.map(layerRow)),
      h("button", { type: "button", onclick: () => {
        spec.layers.splice(Math.max(spec.layers.length - 1, 0), 0, { type: "Dense", units: 100, activation: "relu" });
        draw(); dryRun(); focusLayer(Math.max(spec.layers.length - 2, 0));
      } }, "Add a layer"),
      h("h2", { style: "margin-top:1rem" }, "Optimiser (compile)"),
      h("div", { class: "row" }, h("label", {}, "type", optimizerType),
        (OPTIMIZERS[optimizer.type] || []).map((def) => field(def, optimizer[def.name], ["compile", "optimizer", def.name], setter(optimizer, def.name)))),
      h("h2", { style: "margin-top:1rem" }, "Training (fit)"),
      h("div", { class: "row" }, FIT.map((def) => field(def, spec.fit[def.name], ["fit", def.name], setter(spec.fit, def.name)))),
      formError,
      h("div", { class: "actions", style: "margin-top:1rem" }, h("button", { type: "submit", class: "primary" }, "Queue it for training")));
  }

  function showErrors(error) {
    for (const el of form.querySelectorAll(".field-error")) el.remove();
    for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
    formError.replaceChildren();
    if (!error) return;
    const unplaced = [];
    for (const { loc, msg } of error instanceof ApiError ? error.fields : []) {
      const target = placeOf(loc, msg);
      if (!target) { unplaced.push(`${loc.join(".")}: ${msg}`); continue; }
      target.classList.add("invalid");
      target.setAttribute("aria-invalid", "true");
      const holder = target.closest("label") || target.closest(".layer") || target;
      holder.after(h("p", { class: "field-error", role: "alert", "data-for": target.dataset.loc || loc.join(".") }, msg));
    }
    if (!(error instanceof ApiError) || (!error.fields.length && error.message)) unplaced.push(error.message);
    if (unplaced.length) formError.replaceChildren(h("div", { class: "notice bad" }, unplaced.join("; ")));
  }

  // Where an error belongs: the field its loc names (or the nearest enclosing one); a rule over
  // the whole net that starts "layers[5] (Dense): ..." at that layer; a rule over a section
  // ("fit: give validation_size ... or validation_split") at the first of its fields it names.
  function placeOf(loc, msg) {
    const layer = /^layers\[(\d+)\]/.exec(msg);
    const row = layer && loc.length <= 1 && form.querySelector(`.layer[data-loc="layers.${layer[1]}"]`);
    if (row) return row;
    for (let n = loc.length; n > 0; n--) {
      const found = form.querySelector(`[data-loc="${loc.slice(0, n).join(".")}"]`);
      if (found) return found;
    }
    const section = loc.join(".");
    let named = null;
    let at = Infinity;
    const fields = `:is(input, select)[data-loc${section ? `^="${section}."` : ""}]`;
    for (const field of form.querySelectorAll(fields)) {
      const where = msg.search(new RegExp(`\\b${field.dataset.loc.split(".").pop()}\\b`));
      if (where >= 0 && where < at) { named = field; at = where; }
    }
    return named;
  }

  function payload() {
    return { ...spec, name: spec.name || "untitled" };
  }

  function dryRun() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const mine = ++sequence;
      summaryBox.setAttribute("aria-busy", "true");
      try {
        const answer = await post(`${target()}/validate`, payload());
        if (mine !== sequence) return;
        showErrors(null);
        summaryBox.replaceChildren(summaryTable(answer.summary));
      } catch (error) {
        if (mine !== sequence) return;
        showErrors(error);
        summaryBox.replaceChildren(h("p", { class: "muted" }, "Fix the marked fields to see the summary."));
      } finally {
        summaryBox.removeAttribute("aria-busy");
      }
    }, DRY_RUN_DELAY_MS);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!spec.name) {
      showErrors(new ApiError(422, { details: [{ loc: ["body", "name"], msg: "give it a name" }] }));
      form.querySelector("#f-name").focus();
      return;
    }
    try {
      const created = await post(target(), spec);
      location.hash = `#/experiments/${created.id}`;
    } catch (error) {
      showErrors(error);
    }
  });

  draw();
  dryRun();
  return () => clearTimeout(timer);
}
