// One study: its progress, the leaderboard (polled every couple of seconds while it runs, so it
// fills in live), every trial's curve overlaid, cancel and delete.

import { del, get, picture, post } from "../api.js";
import { badge, h, perEpoch, score, TERMINAL, when } from "../format.js";
import { progressText } from "./studies.js";

const POLL_MS = 2000;

function leaderboard(study) {
  const rows = study.leaderboard;
  if (!rows.length) return h("p", { class: "muted" }, "No trial has been created yet.");
  const objective = study.objective.replaceAll("_", " ");
  return h("div", { class: "table-wrap" }, h("table", { id: "leaderboard" },
    // The columns that answer the notebook's question first (on a phone the rest scroll in
    // after them); the status goes under the trial's name there.
    h("thead", {}, h("tr", {}, h("th", { class: "num" }, "#"), h("th", {}, "Trial"),
      h("th", { class: "num" }, `Best ${objective}`), h("th", { class: "num" }, "Test accuracy"), h("th", { class: "num" }, `Epochs to ${study.threshold}`),
      h("th", { class: "hide-narrow" }, "Status"), h("th", { class: "num" }, "Best epoch"), h("th", { class: "num" }, "Train − val (last)"),
      h("th", { class: "num" }, "Epochs"), h("th", { class: "num" }, "Time"))),
    h("tbody", {}, rows.map((row, i) => h("tr", { "data-id": row.experiment_id, "data-status": row.status },
      h("td", { class: "num" }, i + 1),
      h("td", {}, h("a", { href: `#/experiments/${row.experiment_id}` }, row.label), h("div", { class: "show-narrow" }, badge(row.status)),
        row.error ? h("div", { class: "muted small" }, row.error) : null),
      h("td", { class: "num" }, score(row.objective)),
      h("td", { class: "num" }, score(row.test_accuracy)),
      h("td", { class: "num" }, row.epochs_to_threshold ?? "–"),
      h("td", { class: "hide-narrow" }, badge(row.status)),
      h("td", { class: "num" }, row.best_epoch ?? "–"),
      h("td", { class: "num" }, score(row.final_gap)),
      h("td", { class: "num" }, row.epochs_done),
      h("td", { class: "num" }, perEpoch(row.seconds_per_epoch)))))));
}

function oneEpochEach(study) {
  const { base, space } = study.definition;
  return (base?.fit?.epochs ?? 10) <= 1 && !("fit.epochs" in (space || {}));
}

export async function render(main, { id }) {
  const head = h("div");
  const notice = h("div", { role: "status", "aria-live": "polite" });
  const board = h("section", { class: "card", "aria-label": "Leaderboard" });
  const curves = h("section", { class: "card", id: "study-curves" });
  const definition = h("section", { class: "card" });
  main.replaceChildren(head, notice, board, curves, definition);
  let study = null;
  let drawn = null;
  let timer = null;
  let stopped = false;

  async function act(label, fn) {
    try {
      await fn();
    } catch (error) {
      notice.replaceChildren(h("div", { class: "notice bad", role: "alert" }, `${label}: ${error.message}`));
    }
  }

  function draw() {
    const actions = [];
    const ids = study.leaderboard.map((r) => r.experiment_id);
    if (ids.length >= 2) actions.push(h("a", { class: "button", href: `#/compare?ids=${ids.join(",")}` }, "Compare the trials"));
    if (study.status === "running") actions.push(h("button", { class: "danger", onclick: () => act("Cancel", async () => {
      study = await post(`/studies/${id}/cancel`);
      draw();
    }) }, "Cancel the study"));
    else actions.push(h("button", { class: "danger", onclick: () => act("Delete", async () => {
      if (!confirm(`Delete the study “${study.name}” with its trials, their histories and models?`)) return;
      await del(`/studies/${id}`);
      location.hash = "#/studies";
    }) }, "Delete"));
    head.replaceChildren(h("div", { class: "row" }, h("h1", {}, study.name, " ", badge(study.status)), h("span", { class: "spacer" }), ...actions),
      h("p", { class: "muted", id: "study-progress" }, `Trials: ${progressText(study)}. Ranked by the best ${study.objective} over the epochs. `,
        `Started ${when(study.created_at)}`, study.finished_at ? `, ended ${when(study.finished_at)}.` : "."));
    board.replaceChildren(h("h2", {}, "Leaderboard"), leaderboard(study));
    // The overlay (titled with the study's status) is redrawn only when either has moved on.
    const epochs = study.leaderboard.reduce((sum, r) => sum + r.epochs_done, 0);
    if (`${epochs} ${study.status}` !== drawn) {
      drawn = `${epochs} ${study.status}`;
      curves.replaceChildren(h("h2", {}, "Validation accuracy of every trial"), oneEpochEach(study)
        // One point per trial draws no curve: a column of dots that says less than the table.
        ? h("p", { class: "muted", id: "curves-one-epoch" }, "Each trial trains for one epoch, so there is no curve to draw: the leaderboard above has every trial’s value. Start the study with 2 or more epochs per trial to see them learn.")
        : epochs ? picture(`/studies/${id}/curves.svg?epochs=${epochs}&status=${study.status}`, "every trial's validation accuracy by epoch", { class: "study-curves" })
          : h("p", { class: "muted" }, "The curves appear here as soon as a trial has finished an epoch."));
    }
    definition.replaceChildren(h("h2", {}, "Definition"), h("pre", { tabindex: "0", "aria-label": "the study's definition as JSON" }, JSON.stringify(study.definition, null, 2)));
  }

  async function refresh() {
    study = await get(`/studies/${id}`);
    if (stopped) return;
    draw();
    // A study's status is "running" until its last trial ends; then one last look is enough.
    const busy = study.status === "running" || study.leaderboard.some((r) => !TERMINAL.includes(r.status));
    if (busy) timer = setTimeout(() => refresh().catch((e) => act("Refresh", () => Promise.reject(e))), POLL_MS);
  }
  await refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
