// Challenges: the list (open ones first) and, for a teacher, a form to set one up.

import { ApiError, get, post } from "../api.js";
import { count, h, seconds, when } from "../format.js";

const LAYERS = ["Flatten", "Dense", "BatchNormalization", "Dropout", "LeakyReLU", "ELU", "PReLU", "ReLU", "Activation", "AlphaDropout", "Conv2D", "MaxPooling2D", "Reshape", "Input"];
const OPTIMIZERS = ["SGD", "Adagrad", "RMSprop", "Adam", "Adamax", "Nadam"];

// "open, 2 h 5 min left", "closed 7 Dec, 17:00" for one challenge.
export function state(challenge) {
  if (!challenge.open) return `closed ${when(challenge.closed_at)}`;
  return challenge.seconds_left == null ? "open" : `open, ${seconds(challenge.seconds_left)} left`;
}

// The rules as a learner reads them; "no rules" when there are none.
export function rulesList(rules, perPerson) {
  const items = [
    rules.max_params != null && `at most ${count(rules.max_params)} parameters`,
    rules.max_epochs != null && `at most ${rules.max_epochs} epochs`,
    rules.max_train_seconds != null && `training at most ${seconds(rules.max_train_seconds)}`,
    rules.train_size != null && `train_size exactly ${count(rules.train_size)}`,
    rules.allowed_layers.length && `layers: ${rules.allowed_layers.join(", ")}`,
    rules.allowed_optimizers.length && `optimizers: ${rules.allowed_optimizers.join(", ")}`,
    perPerson != null && `${perPerson} entries per person`,
  ].filter(Boolean);
  return items.length ? h("ul", { class: "rules" }, items.map((item) => h("li", {}, item))) : h("p", { class: "muted" }, "No rules: any net the lab trains.");
}

function createForm() {
  const error = h("div", { role: "alert" });
  const number = (name, label, attrs = {}) =>
    h("label", { for: `c-${name}` }, label, h("input", { id: `c-${name}`, name, type: "number", min: 1, step: 1, placeholder: "no limit", ...attrs }));
  const checks = (name, values) => h("fieldset", {}, h("legend", {}, `allowed ${name} (none ticked: all)`),
    values.map((v) => h("label", { class: "check" }, h("input", { type: "checkbox", name, value: v }), v)));
  const form = h("form", { id: "new-challenge", novalidate: true },
    h("div", { class: "row" },
      h("label", { for: "c-name" }, "Name", h("input", { id: "c-name", name: "name", type: "text", required: true, placeholder: "e.g. Best MLP under 300k parameters" })),
      h("label", { for: "c-closes" }, "Closes at (your time)", h("input", { id: "c-closes", name: "closes_at", type: "datetime-local" }))),
    h("label", { for: "c-description" }, "Description", h("textarea", { id: "c-description", name: "description", rows: 2 })),
    h("div", { class: "row" }, number("max_params", "max parameters"), number("max_epochs", "max epochs"),
      number("train_size", "train_size (everyone)"), number("max_train_seconds", "max training seconds"),
      number("max_entries_per_person", "entries per person")),
    checks("optimizers", OPTIMIZERS), checks("layers", LAYERS),
    h("div", { class: "row" }, h("span", { class: "spacer" }), h("button", { type: "submit", class: "primary" }, "Create the challenge")),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = (name) => form.elements[name].value.trim();
    const int = (name) => (value(name) ? parseInt(value(name), 10) : null);
    const ticked = (name) => [...form.querySelectorAll(`input[name=${name}]:checked`)].map((i) => i.value);
    const rules = { max_params: int("max_params"), max_epochs: int("max_epochs"), train_size: int("train_size"), max_train_seconds: int("max_train_seconds") };
    if (ticked("optimizers").length) rules.allowed_optimizers = ticked("optimizers");
    if (ticked("layers").length) rules.allowed_layers = ticked("layers");
    const body = { name: value("name"), rules, max_entries_per_person: int("max_entries_per_person") };
    if (value("description")) body.description = value("description");
    if (value("closes_at")) body.closes_at = new Date(value("closes_at")).toISOString();
    try {
      const created = await post("/challenges", body);
      location.hash = `#/challenges/${created.id}`;
    } catch (e) {
      const detail = e instanceof ApiError && e.fields.length ? e.fields.map((f) => `${f.loc.join(".")}: ${f.msg}`).join("; ") : e.message;
      error.replaceChildren(h("div", { class: "notice bad" }, `Could not create it: ${detail}`));
    }
  });
  return form;
}

export async function render(main) {
  const page = await get("/challenges");
  const rows = [...page.data].sort((a, b) => Number(b.open) - Number(a.open));
  main.replaceChildren(h("h1", {}, "Challenges"),
    h("section", { class: "card" }, h("h2", {}, "Challenges"), h("div", { class: "table-wrap" }, h("table", { id: "challenges" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "State"), h("th", { scope: "col" }, "Created"))),
      h("tbody", {}, rows.length ? rows.map((c) => h("tr", { "data-id": c.id },
        h("td", {}, h("a", { href: `#/challenges/${c.id}` }, c.name)), h("td", {}, state(c)), h("td", {}, when(c.created_at))))
        : h("tr", {}, h("td", { colspan: 3, class: "muted" }, "No challenge yet: a teacher sets one up below.")))))),
    h("details", { class: "card" }, h("summary", {}, h("h2", {}, "Set up a challenge (teacher)")), createForm()));
}
