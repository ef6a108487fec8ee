// Studies: start one of the notebook's questions as a preset study, and the list of studies,
// polled while any of them runs.

import { ApiError, get, post } from "../api.js";
import { badge, h, when } from "../format.js";

// The notebook's three questions (service/studies/presets.py): a short name and what it runs.
export const PRESETS = {
  optimizers: ["Which optimiser? (8 trials)", "The LeakyReLU net with each of 8 optimisers: SGD, with momentum, Nesterov, Adagrad, RMSprop, Adam, Adamax, Nadam."],
  batchnorm: ["Does BatchNormalization help? (2 trials)", "The BatchNormalization net with and without its BatchNormalization layers."],
  dropout: ["Does Dropout help? (2 trials)", "The Dropout net with and without its Dropout layers."],
};
const POLL_MS = 3000;

// "3 of 8 ended (2 running, 3 queued)" from a study's trial counts by status.
export function progressText(study) {
  const p = study.progress || {};
  const ended = (p.succeeded || 0) + (p.failed || 0) + (p.cancelled || 0);
  const busy = ["running", "queued"].filter((s) => p[s]).map((s) => `${p[s]} ${s}`);
  return `${ended} of ${study.n_trials} ended${busy.length ? ` (${busy.join(", ")})` : ""}`;
}

function startForm() {
  const error = h("div", { role: "alert" });
  const about = h("p", { class: "muted", "aria-live": "polite" }, PRESETS.optimizers[1]);
  const number = (name, label, value, attrs = {}) =>
    h("label", { for: `s-${name}` }, label, h("input", { id: `s-${name}`, name, type: "number", value, step: 1, ...attrs }));
  const form = h("form", { id: "new-study", novalidate: true },
    h("div", { class: "row" },
      h("label", { for: "s-preset" }, "Question", h("select", { id: "s-preset", name: "preset",
        onchange: (e) => { about.textContent = PRESETS[e.target.value][1]; } },
        Object.entries(PRESETS).map(([key, [label]]) => h("option", { value: key }, label)))),
      h("label", { for: "s-name" }, "Name (optional)", h("input", { id: "s-name", name: "name", type: "text", placeholder: "e.g. optimisers-quick" }))),
    about,
    h("div", { class: "row" },
      number("epochs", "epochs per trial", 3, { min: 1 }),
      number("train_size", "train_size", 5000, { min: 1, placeholder: "all" }),
      number("max_parallel", "trials at once", 2, { min: 1, max: 64 }),
      h("span", { class: "spacer" }),
      h("button", { type: "submit", class: "primary" }, "Start the study")),
    h("p", { class: "muted" }, "Each trial is an experiment of its own; a small train_size and few epochs answer in minutes."),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = (name) => form.elements[name].value.trim();
    const body = { preset: value("preset"), max_parallel: parseInt(value("max_parallel"), 10) || 1 };
    if (value("name")) body.name = value("name");
    for (const name of ["epochs", "train_size"]) if (value(name)) body[name] = parseInt(value(name), 10);
    try {
      const study = await post("/studies", body);
      location.hash = `#/studies/${study.id}`;
    } catch (e) {
      const detail = e instanceof ApiError && e.fields.length ? e.fields.map((f) => `${f.loc.join(".")}: ${f.msg}`).join("; ") : e.message;
      error.replaceChildren(h("div", { class: "notice bad" }, `Could not start it: ${detail}`));
    }
  });
  return form;
}

export async function render(main) {
  const body = h("tbody");
  main.replaceChildren(h("h1", {}, "Studies"),
    h("section", { class: "card" }, h("h2", {}, "Start a study"), startForm()),
    h("section", { class: "card" }, h("h2", {}, "Studies so far"), h("div", { class: "table-wrap" }, h("table", { id: "studies" },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Status"), h("th", {}, "Trials"), h("th", { class: "hide-narrow" }, "Ranked by"), h("th", {}, "Created"))),
      body))));

  let timer = null;
  let stopped = false;
  async function refresh() {
    const page = await get("/studies?limit=200");
    body.replaceChildren(...(page.data.length ? page.data.map((s) => h("tr", { "data-id": s.id, "data-status": s.status },
      h("td", {}, h("a", { href: `#/studies/${s.id}` }, s.name)), h("td", {}, badge(s.status)),
      h("td", {}, progressText(s)), h("td", { class: "hide-narrow" }, s.objective), h("td", {}, when(s.created_at))))
      : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No studies yet: start one above."))]));
    if (!stopped && page.data.some((s) => s.status === "running")) timer = setTimeout(() => refresh().catch(() => {}), POLL_MS);
  }
  await refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
