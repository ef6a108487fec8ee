// Compare: the chosen experiments' curves overlaid, beside GET /compare's spec differences and
// per-run table; curves of those still training grow as their epochs arrive.

import { get, subscribe } from "../api.js";
import { lineChart, PALETTE } from "../chart.js";
import { badge, h, perEpoch, score, TERMINAL, when } from "../format.js";

const value = (v) => (v === null || v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v));

// The paths whose values read differently, in the order of the spec: by layer, its type first.
// (The service also lists a path one run sets to null and another lacks; both read "–".)
export function shownDifferences(differences) {
  const order = (path) => path.replace(/\[(\d+)\]/g, (_, n) => `[${n.padStart(4, "0")}]`).replace(/\.type$/, ".!type");
  return Object.keys(differences)
    .filter((path) => new Set(differences[path].map(value)).size > 1)
    .sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
}

// The layers, aligned as a diff aligns lines by GET /compare: each net in brief, then what each
// adds, removes or changes against the first ("+ BatchNormalization after Flatten, …").
const rowsDiffer = (layers) => layers.some((run) => run.changes.length);

function layerRows(layers, firstName) {
  if (!rowsDiffer(layers)) return [];
  return [
    h("tr", { class: "layers" }, h("th", { class: "path" }, "layers"), layers.map((run) => h("td", {}, run.net))),
    h("tr", { class: "layer-changes" }, h("th", { class: "path" }, `layers against ${firstName}`),
      layers.map((run, i) => h("td", {}, i === 0 ? h("span", { class: "muted" }, "–")
        : run.changes.length ? h("ul", { class: "changes" }, run.changes.map((change) => h("li", {}, change))) : "the same"))),
  ];
}

// Two runs of the same name (a rerun, a copy) told apart by their score and their creation time.
const pickLabel = (e) => `${e.name} · ${e.test_accuracy == null ? e.status : score(e.test_accuracy)} · ${when(e.created_at)}`;

export async function render(main, params) {
  const ids = (params.ids || "").split(",").filter(Boolean);
  const all = (await get("/experiments?limit=200")).data;
  const chosen = new Set(ids);
  const picker = h("fieldset", { class: "picker" }, h("legend", {}, "Experiments to compare"),
    all.map((e) => h("label", { class: "check" }, h("input", { type: "checkbox", value: e.id, checked: chosen.has(e.id),
      onchange: (ev) => { ev.target.checked ? chosen.add(e.id) : chosen.delete(e.id); } }), pickLabel(e))),
    h("button", { type: "button", class: "primary", onclick: () => { location.hash = `#/compare?ids=${[...chosen].join(",")}`; } }, "Compare"));
  const charts = h("div");
  main.replaceChildren(h("h1", {}, "Compare"), h("div", { class: "card" }, all.length ? picker : h("p", { class: "muted" }, "No experiments yet.")), charts);
  if (ids.length < 2) {
    charts.replaceChildren(h("p", { class: "muted" }, "Pick two or more experiments."));
    return null;
  }
  const query = `/compare?ids=${ids.map(encodeURIComponent).join(",")}`;
  let comparison = await get(query);

  function draw() {
    const runs = comparison.runs.map((run, i) => ({ ...run, color: PALETTE[i % PALETTE.length] }));
    const series = (key) => runs.map((r, i) => ({ label: r.name, color: r.color,
      points: comparison.epochs.map((epoch, at) => [epoch, comparison.histories[i][key][at]]) }));
    const paths = shownDifferences(comparison.differences);
    const header = h("tr", {}, h("th", {}, "Run"), runs.map((r) => h("th", { style: `color:${r.color}` }, h("a", { href: `#/experiments/${r.experiment_id}`, style: "color:inherit" }, r.name))));
    const perRun = [
      ["status", (r) => badge(r.status)],
      ["best val_accuracy", (r) => score(r.best_val_accuracy)],
      ["best epoch", (r) => r.best_epoch ?? "–"],
      ["test accuracy", (r) => score(r.test_accuracy)],
      [`epochs to ${comparison.threshold}`, (r) => r.epochs_to_threshold ?? "–"],
      ["train − val (last)", (r) => score(r.final_gap)],
      ["epochs done", (r) => r.epochs_done],
      ["time", (r) => perEpoch(r.seconds_per_epoch)],
    ];
    charts.replaceChildren(
      h("div", { class: "card grid" },
        lineChart({ title: "Validation accuracy", yLabel: "val_accuracy", range: [0, 1], series: series("val_accuracy") }),
        lineChart({ title: "Validation loss", yLabel: "val_loss", range: [0, Infinity], series: series("val_loss") })),
      h("section", { class: "card" }, h("h2", {}, "How each did"), h("div", { class: "table-wrap" }, h("table", { id: "runs" },
        h("thead", {}, header.cloneNode(true)),
        h("tbody", {}, perRun.map(([label, cell]) => h("tr", {}, h("th", {}, label), runs.map((r) => h("td", { class: "num" }, cell(r))))))))),
      h("section", { class: "card" }, h("h2", {}, "Where their specs differ"), h("div", { class: "table-wrap" }, h("table", { id: "differences" },
        h("thead", {}, header),
        h("tbody", {}, [...layerRows(comparison.layers, runs[0].name), ...paths.map((path) => h("tr", {}, h("th", { class: "path" }, path), comparison.differences[path].map((v) => h("td", {}, value(v)))))]
          .concat(rowsDiffer(comparison.layers) || paths.length ? [] : [h("tr", {}, h("td", { colspan: runs.length + 1, class: "muted" }, "Their specs are the same."))]))))));
  }
  draw();
  // Curves of those still training grow here too: each of their events asks /compare again.
  const live = comparison.runs.filter((r) => !TERMINAL.includes(r.status));
  let pending = null;
  const streams = live.map((r) => subscribe(`/experiments/${r.experiment_id}/events`, () => {
    pending ??= get(query).then((fresh) => { comparison = fresh; draw(); }).catch(() => {}).finally(() => { pending = null; });
  }));
  return () => streams.forEach((s) => s.end());
}
