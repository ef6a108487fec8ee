// One experiment: status, attempts, queue place and time left, spec, summary, live learning
// curves, test scores, actions and downloads; once trained, its evaluation (confusion heat map,
// mistakes), layer health and diagnostics.

import { del, downloadLink, fetchRaw, get, picture, post, request, subscribe } from "../api.js";
import { learningCurves } from "../chart.js";
import { badge, count, h, ordinal, perEpoch, score, seconds, shape, tagChips, TERMINAL, when } from "../format.js";

// How often to ask again while a worker evaluates (the service's Retry-After says 2 s).
const EVALUATION_RETRY_MS = 2000;
const EVALUATION_TRIES = 90;

// On a phone the service draws its pictures 360 px wide, so their text is not shrunk to 5 px.
const narrow = () => matchMedia("(max-width: 640px)").matches;

export async function render(main, { id }) {
  let experiment = await get(`/experiments/${id}`);
  let epochs = (await get(`/experiments/${id}/history`)).epochs;
  const notice = h("div", { role: "status", "aria-live": "polite" });
  const head = h("div");
  const curves = h("section", { class: "card", "aria-label": "Learning curves" });
  const facts = h("section", { class: "card" });
  const extras = h("div");

  const aliasSlot = h("div");
  main.replaceChildren(head, aliasSlot, notice, curves, h("div", { class: "grid" }, facts, summaryCard(experiment)), extras,
    h("section", { class: "card" }, h("h2", {}, "Spec"), h("pre", { tabindex: "0", "aria-label": "the spec as JSON" }, JSON.stringify(experiment.spec, null, 2))));

  async function act(label, fn) {
    try {
      await fn();
    } catch (error) {
      notice.replaceChildren(h("div", { class: "notice bad", role: "alert" }, `${label}: ${error.message}`));
    }
  }

  function drawHead() {
    const finished = TERMINAL.includes(experiment.status);
    const actions = [h("a", { class: "button", href: `#/new?from=${id}` }, "Edit a copy")];
    if (!finished) actions.push(h("button", { class: "danger", onclick: () => act("Cancel", async () => {
      experiment = await post(`/experiments/${id}/cancel`);
      drawHead(); drawFacts();
    }) }, experiment.cancel_requested ? "Cancelling…" : "Cancel"));
    if (finished) actions.push(h("button", { onclick: () => act("Rerun", async () => {
      const again = await post(`/experiments/${id}/rerun`);
      location.hash = `#/experiments/${again.id}`;
    }) }, "Rerun"));
    if (finished) actions.push(h("button", { class: "danger", onclick: () => act("Delete", async () => {
      if (!confirm(`Delete “${experiment.name}”, its history and its model?`)) return;
      await del(`/experiments/${id}`);
      location.hash = "#/experiments";
    }) }, "Delete"));
    const downloads = [downloadLink(`/experiments/${id}/notebook.py`, "notebook.py"),
      downloadLink(`/experiments/${id}/notebook.ipynb`, "notebook.ipynb")];
    if (experiment.model_available) downloads.push(downloadLink(`/experiments/${id}/model`, "Trained model (.keras)"));
    head.replaceChildren(h("div", { class: "row" },
      h("h1", {}, experiment.name, " ", badge(experiment.status)), h("span", { class: "spacer" }), ...actions),
    h("div", { class: "row downloads", "aria-label": "Downloads" }, h("span", { class: "muted" }, "Take it home:"), downloads));
    // Beside the head, made once and left in place: the head is drawn again on every status
    // event, which would take the focus (and what is being typed) from the field.
    const servable = experiment.status === "succeeded" && experiment.model_available;
    if (servable && !aliasSlot.firstChild) aliasSlot.append(aliasForm());
    if (!servable) aliasSlot.replaceChildren();
  }

  // PUT /models/{alias}: a name that /predict and "Draw a digit" answer with this model.
  function aliasForm() {
    const input = h("input", { type: "text", name: "alias", placeholder: "e.g. production", required: true, size: 14, autocomplete: "off" });
    const form = h("form", { class: "row downloads", id: "alias-form" },
      h("label", { class: "inline" }, "Serve it as", input), h("button", { type: "submit" }, "Point the alias here"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const alias = input.value.trim();
      if (!alias) return;
      act("Alias", async () => {
        await request("PUT", `/models/${encodeURIComponent(alias)}`, { json: { experiment_id: id } });
        experiment = await get(`/experiments/${id}`);
        drawFacts();
        notice.replaceChildren(h("div", { class: "notice" }, `“${alias}” now answers with this model: `,
          h("a", { href: `#/draw?model=${encodeURIComponent(alias)}` }, "draw a digit for it"), "."));
      });
    });
    return form;
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
    if (experiment.queue_position != null) {
      rows.splice(1, 0, ["In the queue", `${ordinal(experiment.queue_position)} in line` +
        (experiment.estimated_start ? `, starts about ${when(experiment.estimated_start)}` : "")]);
    }
    if (experiment.estimated_seconds_left != null) rows.splice(3, 0, ["Time left", `about ${seconds(experiment.estimated_seconds_left)}`]);
    if (experiment.error) rows.push(["Why it ended", experiment.error]);
    if (experiment.tags?.length) rows.push(["Tags", tagChips(experiment.tags)]);
    if (experiment.aliases?.length) rows.push(["Aliases", experiment.aliases.join(", ")]);
    if (experiment.study_id) {
      rows.push(["Study", h("a", { href: `#/studies/${experiment.study_id}` }, "a trial of this study"),
        experiment.trial_params ? ` (${Object.entries(experiment.trial_params).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", ")})` : ""]);
    }
    if (experiment.rerun_of) rows.push(["Rerun of", h("a", { href: `#/experiments/${experiment.rerun_of}`, id: "rerun-of" }, original ?? "the original")]);
    if (experiment.reproduction) rows.push(["Reproduced", `${{ true: "yes", false: "no" }[experiment.reproduction.reproduced] ?? "not yet known"}: ${experiment.reproduction.explanation}`]);
    const attempts = experiment.attempts || [];
    facts.replaceChildren(h("h2", {}, "Status"), h("dl", { class: "facts" }, rows.flatMap(([k, ...v]) => [h("dt", {}, k), h("dd", {}, ...v)])),
      h("div", { class: "table-wrap" }, attempts.length ? h("div", {}, h("table", { style: "margin-top:0.8rem" },
        h("thead", {}, h("tr", {}, h("th", {}, "Attempt"), h("th", {}, "Worker"), h("th", { class: "num" }, "From epoch"), h("th", {}, "Outcome"))),
        h("tbody", {}, attempts.map((a) => h("tr", {}, h("td", {}, a.number), h("td", {}, a.worker || "–"),
          h("td", { class: "num" }, a.start_epoch), h("td", {}, a.outcome || "running")))))) : null));
  }

  // Drawn again on every epoch and every status change: the waiting line follows the status.
  function drawCurves() {
    curves.replaceChildren(h("h2", {}, "Learning curves"),
      epochs.length ? learningCurves(epochs) : h("p", { class: "muted", id: "curves-waiting" }, waitingText(experiment)));
  }

  // A rerun names its original (one request, then the facts are drawn again).
  let original = null;
  if (experiment.rerun_of) {
    get(`/experiments/${experiment.rerun_of}`).then((o) => { original = o.name; drawFacts(); }).catch(() => {});
  }
  let stopped = false;
  const insight = insightCards(extras, () => stopped);
  drawHead(); drawFacts(); drawCurves();
  insight.draw(experiment, epochs.length);

  const stream = subscribe(`/experiments/${id}/events`, async ({ type, data }) => {
    if (type === "epoch") {
      epochs = epochs.filter((e) => e.epoch < data.epoch).concat([data]);
      drawCurves(); drawFacts();
      // The time left and layer health move with every epoch.
      experiment = await get(`/experiments/${id}`);
      drawFacts(); insight.draw(experiment, epochs.length);
    } else if (type === "status") {
      experiment = await get(`/experiments/${id}`);
      drawHead(); drawFacts(); drawCurves(); insight.draw(experiment, epochs.length);
    } else if (type === "deleted") {
      notice.replaceChildren(h("div", { class: "notice bad" }, "This experiment was deleted."));
    }
  });
  return () => { stopped = true; stream.end(); };
}

function waitingText(experiment) {
  if (experiment.status === "queued") return "Queued: the curves appear here as soon as the first epoch is done.";
  if (experiment.status === "running") return "Training: the first epoch’s points appear here as soon as it is done.";
  return "It ended before its first epoch was done.";
}

function summaryCard(experiment) {
  const summary = experiment.summary;
  if (!summary) return h("section", { class: "card" }, h("h2", {}, "Summary"), h("p", { class: "muted" }, "–"));
  return h("section", { class: "card" }, h("h2", {}, "Summary"), summaryTable(summary));
}

// batch_normalization_1 may break after an underscore, where a narrow column needs it to.
const breakable = (name) => name.split("_").flatMap((part, i) => (i ? ["_", h("wbr"), part] : [part]));

export function summaryTable(summary) {
  return h("div", { class: "table-wrap" }, h("table", { class: "summary" },
    h("thead", {}, h("tr", {}, h("th", {}, "Layer"), h("th", {}, "Output shape"), h("th", { class: "num" }, "Parameters"))),
    h("tbody", {}, summary.layers.map((l) => h("tr", {}, h("td", {}, breakable(l.name), " ", h("span", { class: "layer-type" }, `(${l.type})`)), h("td", {}, shape(l.output_shape)),
      h("td", { class: "num" }, count(l.params))))),
    h("tfoot", {},
      h("tr", {}, h("th", {}, "Total"), h("td"), h("td", { class: "num total-params" }, count(summary.total_params))),
      h("tr", {}, h("th", {}, "Trainable"), h("td"), h("td", { class: "num" }, count(summary.trainable_params))),
      h("tr", {}, h("th", {}, "Non-trainable"), h("td"), h("td", { class: "num" }, count(summary.non_trainable_params))))));
}

// Evaluation, layer health and diagnostics, drawn again as the experiment moves on.
function insightCards(box, stopped) {
  const evaluation = h("div");
  const layers = h("div");
  const diagnostics = h("div");
  box.replaceChildren(h("div", { class: "grid" }, evaluation, h("div", {}, layers, diagnostics)));
  let evaluating = false;

  async function drawEvaluation(experiment) {
    if (experiment.status !== "succeeded" || evaluating) return;
    evaluating = true;
    const base = `/experiments/${experiment.id}`;
    const card = h("section", { class: "card", id: "evaluation" }, h("h2", {}, "Evaluation on the test set"));
    evaluation.replaceChildren(card);
    // A challenge's entry keeps its test-set results sealed until the challenge closes.
    const entryOf = (experiment.tags || []).find((tag) => tag.startsWith("challenge-"));
    if (entryOf && experiment.test_accuracy == null) {
      card.replaceChildren(card.firstChild, h("p", { class: "muted", id: "sealed" },
        "This is an entry of a challenge still open: its evaluation on the test set (which covers the private half) is shown once the challenge closes. Its public score is on the ",
        h("a", { href: "#/challenges" }, "challenge's leaderboard"), "."));
      return;
    }
    // An experiment trained before evaluations existed is evaluated on request: 202, then 200.
    for (let tries = 0; tries < EVALUATION_TRIES && !stopped(); tries++) {
      const response = await fetchRaw(`${base}/evaluation`);
      if (response.status === 202) {
        card.replaceChildren(card.firstChild, h("p", { class: "muted", role: "status" }, "A worker is evaluating this model on the test set…"));
        await new Promise((r) => setTimeout(r, EVALUATION_RETRY_MS));
        continue;
      }
      if (!response.ok) {
        const why = response.status === 403 ? (await response.json()).detail : "No evaluation for this experiment.";
        card.replaceChildren(card.firstChild, h("p", { class: "muted" }, why));
        return;
      }
      const found = await response.json();
      card.replaceChildren(card.firstChild,
        h("p", {}, `Accuracy ${score(found.test_accuracy)}, loss ${score(found.test_loss)}, macro F1 ${score(found.macro_f1)}. `,
          h("span", { class: "muted" }, "Rows are the true digit, columns the prediction.")),
        picture(`${base}/confusion.svg${narrow() ? "?narrow=true" : ""}`, "confusion matrix of the test set", { class: "confusion" }),
        h("h3", {}, "Most confident mistakes"),
        h("p", { class: "muted" }, "Each captioned true → predicted (probability)."),
        picture(`${base}/mistakes.png?n=25${narrow() ? "&narrow=true" : ""}`, "the test images it got most confidently wrong", { class: "mistakes" }));
      return;
    }
    evaluating = false;
    if (!stopped()) card.replaceChildren(card.firstChild, h("p", { class: "muted" }, "The evaluation is taking long; open this page again later."));
  }

  function drawLayers(experiment, epochCount) {
    if (experiment.spec.fit.layer_health === false || !epochCount) return;
    layers.replaceChildren(h("section", { class: "card", id: "layer-health" }, h("h2", {}, "Layer health"),
      h("p", { class: "muted" }, "Gradient norm of each Dense (or Conv2D) layer's weights, input to output, one line per epoch: a line falling to the left is vanishing gradients, one shooting up is exploding. BatchNormalization layers are left out: their weights are a scale per unit, not connections, and their gradients are not comparable."),
      // The epoch count in the URL only marks a new picture; the service ignores it.
      picture(`/experiments/${experiment.id}/layers.svg?epochs=${epochCount}${narrow() ? "&narrow=true" : ""}`, "gradient norm of each Dense layer's weights, one line per epoch", { class: "layers" })));
  }

  function drawDiagnostics(experiment) {
    const findings = experiment.diagnostics;
    if (findings == null) return;
    const body = findings.length ? findings.map((f) => h("article", { class: "finding", "data-kind": f.kind },
      h("h3", {}, h("span", { class: "kind" }, f.kind.replaceAll("_", " ")), " ", f.message),
      h("dl", { class: "facts evidence" }, Object.entries(f.evidence).flatMap(([k, v]) =>
        [h("dt", {}, k.replaceAll("_", " ")), h("dd", {}, typeof v === "number" && !Number.isInteger(v) ? score(v) : JSON.stringify(v))])),
      h("p", { class: "suggestion" }, h("strong", {}, "Try: "), f.suggestion)))
      : [h("p", { class: "muted" }, TERMINAL.includes(experiment.status) ? "Nothing looks wrong in its history or its layers." : "Nothing looks wrong so far.")];
    diagnostics.replaceChildren(h("section", { class: "card", id: "diagnostics" }, h("h2", {}, "Diagnostics"), ...body));
  }

  return {
    draw(experiment, epochCount) {
      drawLayers(experiment, epochCount);
      drawDiagnostics(experiment);
      drawEvaluation(experiment);
    },
  };
}
