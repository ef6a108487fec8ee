// Experiments: the list with status, test accuracy, parameters, progress and s/epoch; filter,
// sort, pick some to compare; kept live by the /events stream.

import { get, subscribe } from "../api.js";
import { badge, count, h, perEpoch, score } from "../format.js";

const COLUMNS = [
  { key: "name", label: "Name", value: (e) => e.name.toLowerCase() },
  { key: "status", label: "Status", value: (e) => e.status },
  { key: "test_accuracy", label: "Test accuracy", num: true, value: (e) => e.test_accuracy ?? -1 },
  { key: "params", label: "Parameters", num: true, value: (e) => e.summary?.total_params ?? 0 },
  { key: "progress", label: "Progress", num: true, value: (e) => e.epochs_done / (e.spec?.fit?.epochs || 1) },
  { key: "speed", label: "Time", num: true, value: (e) => e.secondsPerEpoch ?? Infinity },
  { key: "created", label: "Created", value: (e) => e.created_at, hidden: true },
];

export async function render(main) {
  const state = { items: new Map(), sort: "created", descending: true, status: "", text: "", selected: new Set() };
  const body = h("tbody");
  const compareButton = h("button", { class: "primary", disabled: true, onclick: () => {
    location.hash = `#/compare?ids=${[...state.selected].join(",")}`;
  } }, "Compare selected");
  const statusFilter = h("select", { "aria-label": "Status", onchange: (e) => { state.status = e.target.value; draw(); } },
    h("option", { value: "" }, "every status"),
    ["queued", "running", "succeeded", "failed", "cancelled"].map((s) => h("option", { value: s }, s)));
  const textFilter = h("input", { type: "search", placeholder: "name contains…", "aria-label": "Filter by name",
    oninput: (e) => { state.text = e.target.value.toLowerCase(); draw(); } });
  const headRow = h("tr", {}, h("th", {}, h("span", { class: "hide-narrow" }, "Pick")),
    COLUMNS.filter((c) => !c.hidden).map((c) => h("th", { class: c.num ? "num" : "", "aria-sort": "none", "data-key": c.key },
      h("button", { class: "sort", onclick: () => sortBy(c.key) }, c.label))));
  const summary = h("p", { class: "muted", "aria-live": "polite" });
  main.replaceChildren(
    h("div", { class: "row" }, h("h1", {}, "Experiments"), h("span", { class: "spacer" }),
      h("a", { class: "button primary", href: "#/new" }, "New experiment")),
    h("div", { class: "card" },
      h("div", { class: "row", style: "margin-bottom:0.6rem" }, h("label", {}, "Status", statusFilter),
        h("label", {}, "Name", textFilter), h("span", { class: "spacer" }), compareButton),
      h("div", { class: "table-wrap" }, h("table", { id: "experiments" }, h("thead", {}, headRow), body)), summary));

  function sortBy(key) {
    state.descending = state.sort === key ? !state.descending : key !== "name";
    state.sort = key;
    draw();
  }

  function row(e) {
    const epochs = e.spec?.fit?.epochs;
    const pick = h("input", { type: "checkbox", "aria-label": `pick ${e.name} to compare`, checked: state.selected.has(e.id),
      onchange: (ev) => { ev.target.checked ? state.selected.add(e.id) : state.selected.delete(e.id); compareButton.disabled = state.selected.size < 2; } });
    return h("tr", { "data-id": e.id, "data-status": e.status },
      h("td", {}, pick),
      h("td", {}, h("a", { href: `#/experiments/${e.id}` }, e.name)),
      h("td", {}, badge(e.status), e.cancel_requested && !["cancelled", "succeeded", "failed"].includes(e.status) ? " (cancelling)" : ""),
      h("td", { class: "num" }, score(e.test_accuracy)),
      h("td", { class: "num" }, count(e.summary?.total_params)),
      h("td", { class: "num" }, epochs ? `epoch ${e.epochs_done} of ${epochs}` : "–"),
      h("td", { class: "num" }, perEpoch(e.secondsPerEpoch)));
  }

  function draw() {
    const column = COLUMNS.find((c) => c.key === state.sort);
    const rows = [...state.items.values()]
      .filter((e) => (!state.status || e.status === state.status) && (!state.text || e.name.toLowerCase().includes(state.text)))
      .sort((a, b) => {
        const x = column.value(a), y = column.value(b);
        return (x < y ? -1 : x > y ? 1 : 0) * (state.descending ? -1 : 1);
      });
    body.replaceChildren(...(rows.length ? rows.map(row) : [h("tr", {}, h("td", { colspan: 7, class: "muted" },
      state.items.size ? "No experiment matches the filter." : "No experiments yet: start one with “New experiment”."))]));
    for (const th of headRow.querySelectorAll("th[data-key]")) {
      th.setAttribute("aria-sort", th.dataset.key === state.sort ? (state.descending ? "descending" : "ascending") : "none");
    }
    summary.textContent = `${rows.length} of ${state.items.size} experiments shown.`;
  }

  async function speed(e) {
    if (!e.epochs_done) return;
    const history = await get(`/experiments/${e.id}/history`);
    const total = history.epochs.reduce((sum, epoch) => sum + epoch.seconds, 0);
    const item = state.items.get(e.id);
    if (item && history.epochs.length) item.secondsPerEpoch = total / history.epochs.length;
  }

  const page = await get("/experiments?limit=200");
  for (const e of page.data) state.items.set(e.id, e);
  draw();
  // Seconds per epoch come from each history; a few at a time, then once more drawn.
  const queue = page.data.filter((e) => e.epochs_done);
  await Promise.all(Array.from({ length: 4 }, async () => { while (queue.length) await speed(queue.shift()).catch(() => {}); }));
  draw();

  const stream = subscribe("/events", async ({ type, data }) => {
    const item = state.items.get(data.experiment_id);
    if (type === "deleted") state.items.delete(data.experiment_id);
    else if (!item) state.items.set(data.experiment_id, await get(`/experiments/${data.experiment_id}`));
    else if (type === "status") Object.assign(item, { status: data.status, test_accuracy: data.test_accuracy, cancel_requested: data.cancel_requested });
    else if (type === "epoch") {
      const done = (item.secondsPerEpoch ?? 0) * Math.min(item.epochs_done, data.epoch - 1);
      item.epochs_done = data.epoch;
      item.secondsPerEpoch = (done + data.seconds) / data.epoch;
    }
    draw();
  });
  return () => stream.end();
}
