// Compare: overlay the curves of the chosen experiments, with what differs in their specs.

import { get, subscribe } from "../api.js";
import { lineChart, PALETTE } from "../chart.js";
import { h, score } from "../format.js";

function flatten(value, prefix = "", out = {}) {
  if (value && typeof value === "object") {
    for (const [key, inner] of Object.entries(value)) flatten(inner, prefix ? `${prefix}.${key}` : key, out);
  } else {
    out[prefix] = value;
  }
  return out;
}

export async function render(main, params) {
  const ids = (params.ids || "").split(",").filter(Boolean);
  const all = (await get("/experiments?limit=200")).data;
  const chosen = new Set(ids);
  const picker = h("fieldset", { class: "row" }, h("legend", {}, "Experiments to compare"),
    all.map((e) => h("label", { class: "check" }, h("input", { type: "checkbox", value: e.id, checked: chosen.has(e.id),
      onchange: (ev) => { ev.target.checked ? chosen.add(e.id) : chosen.delete(e.id); } }), e.name)),
    h("button", { type: "button", class: "primary", onclick: () => { location.hash = `#/compare?ids=${[...chosen].join(",")}`; } }, "Compare"));
  const charts = h("div");
  main.replaceChildren(h("h1", {}, "Compare"), h("div", { class: "card" }, all.length ? picker : h("p", { class: "muted" }, "No experiments yet.")), charts);
  if (ids.length < 1) {
    charts.replaceChildren(h("p", { class: "muted" }, "Pick two or more experiments."));
    return null;
  }
  const runs = await Promise.all(ids.map(async (id, i) => ({
    experiment: await get(`/experiments/${id}`),
    epochs: (await get(`/experiments/${id}/history`)).epochs,
    color: PALETTE[i % PALETTE.length],
  })));

  function draw() {
    const series = (key) => runs.map((r) => ({ label: r.experiment.name, color: r.color, points: r.epochs.map((e) => [e.epoch, e[key]]) }));
    const flat = runs.map((r) => flatten(r.experiment.spec));
    const keys = [...new Set(flat.flatMap(Object.keys))].filter((k) => new Set(flat.map((f) => JSON.stringify(f[k]))).size > 1).sort();
    charts.replaceChildren(
      h("div", { class: "card grid" },
        lineChart({ title: "Validation accuracy", yLabel: "val_accuracy", series: series("val_accuracy") }),
        lineChart({ title: "Validation loss", yLabel: "val_loss", series: series("val_loss") })),
      h("div", { class: "card" }, h("h2", {}, "Where they differ"), h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, ""), runs.map((r) => h("th", { style: `color:${r.color}` }, r.experiment.name)))),
        h("tbody", {},
          h("tr", {}, h("th", {}, "test accuracy"), runs.map((r) => h("td", {}, score(r.experiment.test_accuracy)))),
          keys.length ? keys.map((k) => h("tr", {}, h("th", {}, k), flat.map((f) => h("td", {}, f[k] === undefined ? "–" : String(f[k])))))
            : h("tr", {}, h("td", { colspan: runs.length + 1, class: "muted" }, "Their specs are the same.")))))));
  }
  draw();
  // Curves of those still training grow here too.
  const streams = runs.filter((r) => !["succeeded", "failed", "cancelled"].includes(r.experiment.status)).map((r) =>
    subscribe(`/experiments/${r.experiment.id}/events`, ({ type, data }) => {
      if (type === "epoch") r.epochs = r.epochs.filter((e) => e.epoch < data.epoch).concat([data]);
      if (type === "status") Object.assign(r.experiment, { status: data.status, test_accuracy: data.test_accuracy });
      draw();
    }));
  return () => streams.forEach((s) => s.end());
}
