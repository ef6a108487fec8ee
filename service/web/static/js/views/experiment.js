// One experiment: status, attempts, spec, summary, live learning curves, test scores, actions,
// and, where the service has them, its evaluation and layer health.

import { ApiError, del, get, post, request, subscribe } from "../api.js";
import { has } from "../capabilities.js";
import { learningCurves } from "../chart.js";
import { badge, count, h, perEpoch, score, shape, when } from "../format.js";

const ID = "/experiments/{experiment_id}";

export async function render(main, { id }) {
  let experiment = await get(`/experiments/${id}`);
  let epochs = (await get(`/experiments/${id}/history`)).epochs;
  const notice = h("div", { role: "status", "aria-live": "polite" });
  const head = h("div");
  const curves = h("section", { class: "card", "aria-label": "Learning curves" });
  const facts = h("section", { class: "card" });
  const extras = h("div");

  main.replaceChildren(head, notice, curves, h("div", { class: "grid" }, facts, summaryCard(experiment)), extras,
    h("section", { class: "card" }, h("h2", {}, "Spec"), h("pre", {}, JSON.stringify(experiment.spec, null, 2))));

  async function act(label, fn) {
    try {
      await fn();
    } catch (error) {
      notice.replaceChildren(h("div", { class: "notice bad", role: "alert" }, `${label}: ${error.message}`));
    }
  }

  async function drawHead() {
    const finished = ["succeeded", "failed", "cancelled"].includes(experiment.status);
    const actions = [h("a", { class: "button", href: `#/new?from=${id}` }, "Edit a copy")];
    if (!finished) actions.push(h("button", { class: "danger", onclick: () => act("Cancel", async () => {
      experiment = await post(`/experiments/${id}/cancel`);
      drawHead(); drawFacts();
    }) }, experiment.cancel_requested ? "Cancelling…" : "Cancel"));
    if (finished && (await has("post", `${ID}/rerun`))) actions.push(h("button", { onclick: () => act("Rerun", async () => {
      const again = await post(`/experiments/${id}/rerun`);
      location.hash = `#/experiments/${again.id}`;
    }) }, "Rerun"));
    for (const path of [`${ID}/model`, `${ID}/download`, `${ID}/model.keras`]) {
      if (experiment.model_available && (await has("get", path))) {
        actions.push(h("a", { class: "button", href: path.replace("{experiment_id}", id), download: "" }, "Download model"));
        break;
      }
    }
    if (finished) actions.push(h("button", { class: "danger", onclick: () => act("Delete", async () => {
      if (!confirm(`Delete “${experiment.name}”, its history and its model?`)) return;
      await del(`/experiments/${id}`);
      location.hash = "#/experiments";
    }) }, "Delete"));
    head.replaceChildren(h("div", { class: "row" },
      h("h1", {}, experiment.name, " ", badge(experiment.status)), h("span", { class: "spacer" }), ...actions));
  }

  function drawFacts() {
    const total = epochs.reduce((sum, e) => sum + e.seconds, 0);
    const rows = [
      ["Status", experiment.status + (experiment.cancel_requested && experiment.status === "running" ? " (cancel requested)" : "")],
      ["Progress", `epoch ${epochs.length} of ${experiment.spec.fit.epochs}`],
      ["Time", epochs.length ? perEpoch(total / epochs.length) : "–"],
      ["Test accuracy", score(experiment.test_accuracy)],
      ["Test loss", score(experiment.test_loss)],
      ["Created", when(experiment.created_at)],
      ["Finished", when(experiment.finished_at)],
      ["Attempt", `${experiment.attempt} of ${experiment.max_attempts}`],
    ];
    if (experiment.error) rows.push(["Why it ended", experiment.error]);
    if (experiment.aliases?.length) rows.push(["Aliases", experiment.aliases.join(", ")]);
    const attempts = experiment.attempts || [];
    facts.replaceChildren(h("h2", {}, "Status"), h("dl", { class: "facts" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      h("div", { class: "table-wrap" }, attempts.length ? h("div", {}, h("table", { style: "margin-top:0.8rem" },
        h("thead", {}, h("tr", {}, h("th", {}, "Attempt"), h("th", {}, "Worker"), h("th", { class: "num" }, "From epoch"), h("th", {}, "Outcome"))),
        h("tbody", {}, attempts.map((a) => h("tr", {}, h("td", {}, a.number), h("td", {}, a.worker || "–"),
          h("td", { class: "num" }, a.start_epoch), h("td", {}, a.outcome || "running")))))) : null));
  }

  function drawCurves() {
    curves.replaceChildren(h("h2", {}, "Learning curves"),
      epochs.length ? learningCurves(epochs) : h("p", { class: "muted" }, experiment.status === "queued"
        ? "Queued: the curves appear here as soon as the first epoch is done." : "No epoch recorded yet."));
  }

  drawHead(); drawFacts(); drawCurves();
  drawExtras(extras, experiment);

  const stream = subscribe(`/experiments/${id}/events`, async ({ type, data }) => {
    if (type === "epoch") {
      epochs = epochs.filter((e) => e.epoch < data.epoch).concat([data]);
      drawCurves(); drawFacts();
    } else if (type === "status") {
      experiment = await get(`/experiments/${id}`);
      drawHead(); drawFacts();
      if (experiment.status === "succeeded") drawExtras(extras, experiment);
    } else if (type === "deleted") {
      notice.replaceChildren(h("div", { class: "notice bad" }, "This experiment was deleted."));
    }
  });
  return () => stream.end();
}

function summaryCard(experiment) {
  const summary = experiment.summary;
  if (!summary) return h("section", { class: "card" }, h("h2", {}, "Summary"), h("p", { class: "muted" }, "–"));
  return h("section", { class: "card" }, h("h2", {}, "Summary"), summaryTable(summary));
}

export function summaryTable(summary) {
  return h("div", { class: "table-wrap" }, h("table", { class: "summary" },
    h("thead", {}, h("tr", {}, h("th", {}, "Layer"), h("th", {}, "Output shape"), h("th", { class: "num" }, "Parameters"))),
    h("tbody", {}, summary.layers.map((l) => h("tr", {}, h("td", {}, `${l.name} (${l.type})`), h("td", {}, shape(l.output_shape)),
      h("td", { class: "num" }, count(l.params))))),
    h("tfoot", {},
      h("tr", {}, h("th", {}, "Total"), h("td"), h("td", { class: "num total-params" }, count(summary.total_params))),
      h("tr", {}, h("th", {}, "Trainable"), h("td"), h("td", { class: "num" }, count(summary.trainable_params))),
      h("tr", {}, h("th", {}, "Non-trainable"), h("td"), h("td", { class: "num" }, count(summary.non_trainable_params))))));
}

// Sections colleagues' endpoints add; each appears only where the service has it.
async function drawExtras(box, experiment) {
  const cards = [];
  const base = `/experiments/${experiment.id}`;
  if (experiment.status === "succeeded" && (await has("get", `${ID}/confusion.svg`))) {
    cards.push(h("section", { class: "card" }, h("h2", {}, "Confusion matrix (test set)"),
      h("img", { src: `${base}/confusion.svg`, alt: "confusion matrix of the test set", style: "max-width:100%" })));
  }
  if (experiment.status === "succeeded" && (await has("get", `${ID}/mistakes.png`))) {
    cards.push(h("section", { class: "card" }, h("h2", {}, "Most confident mistakes"),
      h("img", { src: `${base}/mistakes.png`, alt: "the test images it got most confidently wrong", style: "max-width:100%" })));
  }
  if (await has("get", `${ID}/layers.svg`)) {
    cards.push(h("section", { class: "card" }, h("h2", {}, "Layer health"),
      h("img", { src: `${base}/layers.svg`, alt: "gradient norm by layer over epochs", style: "max-width:100%" })));
  }
  if (await has("get", `${ID}/diagnostics`)) {
    try {
      const diagnostics = await request("GET", `${base}/diagnostics`, { retry: false });
      cards.push(h("section", { class: "card" }, h("h2", {}, "Diagnostics"), h("pre", {}, JSON.stringify(diagnostics, null, 2))));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
    }
  }
  box.replaceChildren(...(cards.length ? [h("div", { class: "grid" }, cards)] : []));
}

