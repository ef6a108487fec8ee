// The class, for a teacher: one row per person (queued, running, done, best test accuracy and
// its run, training minutes today, last active), and the queue in the order it will run, with
// cancel on any job. Live: any change on the /events stream redraws it (at most twice a second).

import { ApiError, get, post, subscribe } from "../api.js";
import { badge, h, score, when } from "../format.js";

const REDRAW_MS = 500;

export async function render(main) {
  const people = h("tbody");
  const queue = h("tbody");
  const disk = h("div", { class: "card", id: "class-disk" });
  const notice = h("p", { class: "error", role: "alert" });
  main.replaceChildren(
    h("div", { class: "row page-head" }, h("h1", {}, "Class")),
    notice,
    h("div", { class: "card" }, h("h2", {}, "People"),
      h("div", { class: "table-wrap", tabindex: 0, "aria-label": "people of the class" }, h("table", { id: "class-people" },
        h("thead", {}, h("tr", {}, ["Person", "Queued", "Running", "Done", "Best test accuracy", "Minutes today", "Last active"]
          .map((label, i) => h("th", { class: i && i < 6 ? "num" : "" }, label)))),
        people))),
    disk,
    h("div", { class: "card" }, h("h2", {}, "Queue, in the order it will run"),
      h("div", { class: "table-wrap", tabindex: 0, "aria-label": "the queue" }, h("table", { id: "class-queue" },
        h("thead", {}, h("tr", {}, ["#", "Experiment", "Owner", "Status", "Starts", "Cancel"].map((label) => h("th", {}, label)))),
        queue))));

  function personRow(p) {
    const best = p.best_experiment_id
      ? h("a", { href: `#/experiments/${p.best_experiment_id}` }, score(p.best_test_accuracy))
      : "–";
    return h("tr", { "data-person": p.name, class: p.revoked ? "muted" : "" },
      h("td", {}, p.name, p.role === "teacher" ? " (teacher)" : "", p.revoked ? " (revoked)" : ""),
      h("td", { class: "num queued" }, String(p.queued)),
      h("td", { class: "num running" }, String(p.running)),
      h("td", { class: "num done" }, String(p.done)),
      h("td", { class: "num best" }, best),
      h("td", { class: "num" }, p.training_minutes_today.toFixed(1)),
      h("td", {}, p.last_active ? when(p.last_active) : "–"));
  }

  function jobRow(e) {
    const cancel = h("button", { type: "button", class: "danger cancel", disabled: e.cancel_requested, onclick: async () => {
      cancel.disabled = true;
      try {
        await post(`/experiments/${e.id}/cancel`);
      } catch (error) {
        notice.textContent = error instanceof ApiError ? error.message : String(error);
      }
      schedule();
    } }, e.cancel_requested ? "Cancelling" : "Cancel");
    return h("tr", { "data-id": e.id, "data-owner": e.owner || "" },
      h("td", { class: "num" }, e.queue_position ? String(e.queue_position) : "–"),
      h("td", {}, h("a", { href: `#/experiments/${e.id}` }, e.name)),
      h("td", {}, e.owner || "–"),
      h("td", {}, badge(e.status)),
      h("td", {}, e.status === "running" ? "running" : e.estimated_start ? when(e.estimated_start) : "–"),
      h("td", {}, cancel));
  }

  async function load() {
    const [class_, running, queued, health] = await Promise.all([
      get("/people"),
      get("/experiments?status=running&limit=200"),
      get("/experiments?status=queued&limit=200"),
      get("/health").catch(() => null),
    ]);
    drawDisk(health && health.disk);
    people.replaceChildren(...(class_.data.length ? class_.data.map(personRow)
      : [h("tr", {}, h("td", { colspan: 7, class: "muted empty" }, "Nobody yet: add the class with POST /people."))]));
    const order = [...running.data, ...queued.data.sort((a, b) => a.queue_position - b.queue_position)];
    queue.replaceChildren(...(order.length ? order.map(jobRow)
      : [h("tr", {}, h("td", { colspan: 6, class: "muted empty" }, "Nothing queued or running."))]));
  }

  // What the term's work takes on disk and what is left (GET /health, measured every 30 s).
  function drawDisk(d) {
    if (!d) return disk.replaceChildren();
    const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MB`;
    const free = d.free_bytes == null ? "remote storage" : `${mb(d.free_bytes)} free`;
    disk.replaceChildren(h("h2", {}, "Disk"),
      h("p", { class: d.low ? "notice bad" : "" },
        `Models and checkpoints ${mb(d.store_bytes)}, database ${mb(d.database_bytes)}; ${free}`,
        d.low ? ` — under MIN_FREE_DISK_BYTES (${mb(d.min_free_bytes)}): new trainings are refused until space is freed (python -m service gc).` : "."));
  }

  let timer = null;
  function schedule() {
    if (timer) return;
    timer = setTimeout(() => { timer = null; load().catch(() => {}); }, REDRAW_MS);
  }

  await load();
  const stream = subscribe("/events", schedule);
  return () => { stream.end(); clearTimeout(timer); };
}
