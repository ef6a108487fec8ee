// Experiments: the list with status, tags, test accuracy, parameters, progress and s/epoch;
// filter (by status, name and tags), sort, pick some to compare; kept live by the /events
// stream. The filter and the sort live in the page's URL, so a filtered list can be shared,
// reloaded or gone back to.

import { get, me, subscribe } from "../api.js";
import { badge, count, h, perEpoch, score, TERMINAL } from "../format.js";

const COLUMNS = [
  { key: "name", label: "Name", value: (e) => e.name.toLowerCase() },
  { key: "status", label: "Status", narrow: false, value: (e) => e.status },
  { key: "test_accuracy", label: "Test accuracy", num: true, value: (e) => e.test_accuracy ?? -1 },
  { key: "params", label: "Parameters", num: true, narrow: false, value: (e) => e.summary?.total_params ?? 0 },
  { key: "progress", label: "Progress", num: true, value: (e) => e.epochs_done / (e.spec?.fit?.epochs || 1) },
  { key: "speed", label: "Time", num: true, narrow: false, value: (e) => e.secondsPerEpoch ?? Infinity },
  { key: "created", label: "Created", value: (e) => e.created_at, hidden: true },
];
const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled", "pruned"];
const SPEED_FETCHERS = 4;

// The view's state from the URL: #/experiments?tag=a&tag=b&status=running&name=adam&sort=-created
function stateFrom(search) {
  const sort = search?.get("sort") || "-created";
  const key = sort.replace(/^-/, "");
  return {
    tags: [...new Set(search?.getAll("tag") || [])],
    status: STATUSES.includes(search?.get("status")) ? search.get("status") : "",
    mine: search?.get("owner") === "me",
    text: search?.get("name") || "",
    sort: COLUMNS.some((c) => c.key === key) ? key : "created",
    descending: sort.startsWith("-"),
  };
}

function hashOf(state) {
  const query = new URLSearchParams();
  for (const tag of state.tags) query.append("tag", tag);
  if (state.status) query.set("status", state.status);
  if (state.mine) query.set("owner", "me");
  if (state.text) query.set("name", state.text);
  if (state.sort !== "created" || !state.descending) query.set("sort", `${state.descending ? "-" : ""}${state.sort}`);
  const text = query.toString();
  return `#/experiments${text ? `?${text}` : ""}`;
}

const hasEvery = (e, tags) => tags.every((tag) => (e.tags || []).includes(tag));

export async function render(main, params, search) {
  // `outside`: experiments seen on the stream that the tag filter leaves out (asked about once).
  const state = { ...stateFrom(search), items: new Map(), outside: new Set(), selected: new Set() };
  const body = h("tbody");
  const compareButton = h("button", { class: "primary", disabled: true, onclick: () => {
    location.hash = `#/compare?ids=${[...state.selected].join(",")}`;
  } }, "Compare selected");
  const statusFilter = h("select", { "aria-label": "Status", onchange: (e) => { state.status = e.target.value; remember(); draw(); } },
    h("option", { value: "" }, "every status"), STATUSES.map((s) => h("option", { value: s, selected: s === state.status }, s)));
  // "Mine": only the work of whoever this tab is signed in as (the service answers ?owner=me).
  const mineFilter = h("input", { type: "checkbox", id: "mine", checked: state.mine, onchange: async (e) => {
    state.mine = e.target.checked;
    history.pushState(null, "", hashOf(state));
    await load();
  } });
  const textFilter = h("input", { type: "search", placeholder: "name contains…", "aria-label": "Filter by name", value: state.text,
    oninput: (e) => { state.text = e.target.value; remember(); draw(); } });
  const tagFilter = h("div", { class: "row tag-filter", id: "tag-filter", "aria-live": "polite" });
  const headRow = h("tr", {}, h("th", {}, "Pick"),
    COLUMNS.filter((c) => !c.hidden).map((c) => h("th", { class: [c.num ? "num" : "", c.narrow === false ? "hide-narrow" : ""].join(" ").trim(),
      "aria-sort": "none", "data-key": c.key }, h("button", { class: "sort", onclick: () => sortBy(c.key) }, c.label))));
  const summary = h("p", { class: "muted", "aria-live": "polite" });
  main.replaceChildren(
    h("div", { class: "row page-head" }, h("h1", {}, "Experiments"), h("span", { class: "spacer" }),
      h("a", { class: "button primary", href: "#/new" }, "New experiment")),
    h("div", { class: "card" },
      h("div", { class: "row", style: "margin-bottom:0.6rem" }, h("label", {}, mineFilter, " Mine"), h("label", {}, "Status", statusFilter),
        h("label", {}, "Name", textFilter), h("span", { class: "spacer" }), compareButton),
      tagFilter,
      h("div", { class: "table-wrap" }, h("table", { id: "experiments" }, h("thead", {}, headRow), body)), summary));

  // Filters and sort that do not change what is loaded go into the URL without a new entry.
  function remember() {
    history.replaceState(null, "", hashOf(state));
  }

  // A tag filter asks the service again (the list holds at most 200); Back undoes it.
  async function setTags(tags) {
    state.tags = [...new Set(tags)];
    history.pushState(null, "", hashOf(state));
    await load();
  }

  function sortBy(key) {
    state.descending = state.sort === key ? !state.descending : key !== "name";
    state.sort = key;
    remember();
    draw();
  }

  function drawTagFilter() {
    const parts = state.tags.length ? [
      h("span", { class: "muted" }, "Tagged:"),
      ...state.tags.map((tag) => h("span", { class: "tag active", "data-tag": tag }, tag,
        h("button", { type: "button", class: "remove", "aria-label": `stop filtering by tag ${tag}`,
          onclick: () => setTags(state.tags.filter((t) => t !== tag)) }, "✕"))),
      state.tags.length > 1 ? h("button", { type: "button", class: "link", onclick: () => setTags([]) }, "every tag") : "",
    ] : [h("span", { class: "muted small" }, "Click a tag to show only the experiments that have it.")];
    tagFilter.replaceChildren(...parts);
  }

  function tagButtons(e) {
    if (!e.tags?.length) return null;
    return h("span", { class: "tags" }, e.tags.map((tag) => state.tags.includes(tag)
      ? h("span", { class: "tag active" }, tag)
      : h("button", { type: "button", class: "tag", "data-tag": tag, title: `show only experiments tagged ${tag}`,
        onclick: () => setTags([...state.tags, tag]) }, tag)));
  }

  function row(e) {
    const epochs = e.spec?.fit?.epochs;
    // On a phone the status goes under the name, so that the row fits the screen's width.
    const status = h("span", {}, badge(e.status), e.cancel_requested && !TERMINAL.includes(e.status) ? " (cancelling)" : "");
    const pick = h("input", { type: "checkbox", "aria-label": `pick ${e.name} to compare`, checked: state.selected.has(e.id),
      onchange: (ev) => { ev.target.checked ? state.selected.add(e.id) : state.selected.delete(e.id); compareButton.disabled = state.selected.size < 2; } });
    return h("tr", { "data-id": e.id, "data-status": e.status },
      h("td", {}, pick),
      h("td", { class: "name" }, h("a", { href: `#/experiments/${e.id}` }, e.name),
        e.owner ? h("span", { class: "owner muted small" }, ` by ${e.owner}`) : "",
        h("div", { class: "show-narrow" }, status), tagButtons(e)),
      h("td", { class: "hide-narrow" }, status.cloneNode(true)),
      h("td", { class: "num" }, score(e.test_accuracy)),
      h("td", { class: "num hide-narrow" }, count(e.summary?.total_params)),
      h("td", { class: "num" }, epochs ? [h("span", { class: "hide-narrow" }, "epoch "), `${e.epochs_done} of ${epochs}`] : "–"),
      h("td", { class: "num hide-narrow" }, perEpoch(e.secondsPerEpoch)));
  }

  function draw() {
    const column = COLUMNS.find((c) => c.key === state.sort);
    const text = state.text.toLowerCase();
    const rows = [...state.items.values()]
      .filter((e) => (!state.status || e.status === state.status) && (!text || e.name.toLowerCase().includes(text)))
      .sort((a, b) => {
        const x = column.value(a), y = column.value(b);
        return (x < y ? -1 : x > y ? 1 : 0) * (state.descending ? -1 : 1);
      });
    body.replaceChildren(...(rows.length ? rows.map(row) : [h("tr", {}, h("td", { colspan: 7, class: "muted empty" }, emptyText()))]));
    for (const th of headRow.querySelectorAll("th[data-key]")) {
      th.setAttribute("aria-sort", th.dataset.key === state.sort ? (state.descending ? "descending" : "ascending") : "none");
    }
    const tagged = state.tags.length ? ` tagged ${state.tags.join(" and ")}` : "";
    summary.textContent = `${rows.length} of ${state.items.size} experiments${tagged} shown.`;
  }

  function emptyText() {
    if (state.items.size) return "No experiment matches the filter.";
    if (state.tags.length) return `No experiment is tagged ${state.tags.join(" and ")}.`;
    return "No experiments yet: start one with “New experiment”.";
  }

  async function speed(e) {
    const history = await get(`/experiments/${e.id}/history`);
    const total = history.epochs.reduce((sum, epoch) => sum + epoch.seconds, 0);
    const item = state.items.get(e.id);
    if (item && history.epochs.length) item.secondsPerEpoch = total / history.epochs.length;
  }

  let loading = 0;
  async function load() {
    const mine = ++loading;
    drawTagFilter();
    const query = new URLSearchParams({ limit: 200 });
    for (const tag of state.tags) query.append("tag", tag);
    if (state.mine) query.set("owner", "me");
    const page = await get(`/experiments?${query}`);
    if (mine !== loading) return;
    state.items = new Map(page.data.map((e) => [e.id, e]));
    state.outside.clear();
    draw();
    // Seconds per epoch come from each history; a few at a time, then once more drawn.
    const queue = page.data.filter((e) => e.epochs_done);
    await Promise.all(Array.from({ length: SPEED_FETCHERS }, async () => {
      while (queue.length && mine === loading) await speed(queue.shift()).catch(() => {});
    }));
    if (mine === loading) draw();
  }

  await load();

  const stream = subscribe("/events", async ({ type, data }) => {
    const item = state.items.get(data.experiment_id);
    if (type === "deleted") state.items.delete(data.experiment_id);
    else if (!item) {
      // One the list has not seen: created since, or outside the tag filter.
      if (state.outside.has(data.experiment_id)) return;
      const fresh = await get(`/experiments/${data.experiment_id}`).catch(() => null);
      if (!fresh || state.items.has(fresh.id)) return;
      const notMine = state.mine && me.signed_in && fresh.owner !== me.name;
      if (!hasEvery(fresh, state.tags) || notMine) { state.outside.add(fresh.id); return; }
      state.items.set(fresh.id, fresh);
    } else if (type === "status") Object.assign(item, { status: data.status, test_accuracy: data.test_accuracy, cancel_requested: data.cancel_requested });
    else if (type === "epoch") {
      const done = (item.secondsPerEpoch ?? 0) * Math.min(item.epochs_done, data.epoch - 1);
      item.epochs_done = data.epoch;
      item.secondsPerEpoch = (done + data.seconds) / data.epoch;
    }
    draw();
  });
  return () => stream.end();
}
