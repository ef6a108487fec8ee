// One challenge: its rules, time left, the live leaderboard (refreshed as entries finish, from
// the event stream) and, after the close, the final board with each person's public rank.

import { ApiError, downloadLink, get, post, subscribe } from "../api.js";
import { count, h, score, when } from "../format.js";
import { rulesList, state } from "./challenges.js";

const REFRESH_DELAY_MS = 500;

function board(leaderboard) {
  const closed = leaderboard.ranked_by === "private";
  // On a phone the columns that answer "who is ahead" stay; the details hide (.hide-narrow).
  const head = [["Rank"], ["Person"], [closed ? "Private score" : "Public score"], closed ? ["Public rank"] : null,
    ["Entries"], ["Parameters", "hide-narrow"], ["Epochs", "hide-narrow"], ["Entered", "hide-narrow"]].filter(Boolean);
  return h("div", { class: "table-wrap", tabindex: 0, "aria-label": "leaderboard" }, h("table", { id: "leaderboard" },
    h("thead", {}, h("tr", {}, head.map(([name, hide]) => h("th", { scope: "col", class: hide }, name)))),
    h("tbody", {}, leaderboard.rows.length ? leaderboard.rows.map((row) => h("tr", { "data-person": row.person },
      h("td", { class: "num" }, row.rank ?? "–"),
      h("td", {}, row.experiment_id ? h("a", { href: `#/experiments/${row.experiment_id}` }, row.person) : row.person),
      h("td", { class: "num" }, score(row.score)),
      closed ? h("td", { class: "num" }, shake(row)) : null,
      h("td", { class: "num" }, row.entries_used), h("td", { class: "num hide-narrow" }, count(row.params)),
      h("td", { class: "num hide-narrow" }, row.epochs ?? "–"), h("td", { class: "hide-narrow" }, when(row.entered_at))))
      : h("tr", {}, h("td", { colspan: head.length, class: "muted" }, "No entries yet.")))));
}

// "2 (↑1)": where the entry stood on the public board, and how far the private half moved it.
function shake(row) {
  if (row.public_rank == null || row.rank == null) return "–";
  const moved = row.public_rank - row.rank;
  return moved === 0 ? String(row.public_rank) : `${row.public_rank} (${moved > 0 ? "↑" : "↓"}${Math.abs(moved)})`;
}

export async function render(main, params) {
  const id = params.id;
  const head = h("div");
  const boardBox = h("div", { "aria-live": "polite" });
  const note = h("p", { class: "muted" });
  const actions = h("div", { class: "row" });
  const mineBox = h("section", { class: "card", id: "mine" });
  main.replaceChildren(head, h("section", { class: "card" }, h("h2", {}, "Leaderboard"), note, boardBox), mineBox, actions);

  let challenge = null;
  async function refresh() {
    const leaderboard = await get(`/challenges/${id}/leaderboard`);
    challenge = leaderboard.challenge;
    head.replaceChildren(...[h("h1", {}, challenge.name), h("p", { id: "challenge-state" }, state(challenge)),
      challenge.description ? h("p", {}, challenge.description) : null,
      h("section", { class: "card" }, h("h2", {}, "Rules"), rulesList(challenge.rules, challenge.max_entries_per_person))].filter(Boolean));
    note.textContent = leaderboard.ranked_by === "private"
      ? "Final: ranked by the private half of the test set; the public rank beside shows the shake-up."
      : "Ranked by the public half of the test set; the private half decides once the challenge closes.";
    boardBox.replaceChildren(board(leaderboard));
    const yours = leaderboard.yours;
    const left = yours.entries_left == null ? "" : `, ${yours.entries_left} left`;
    // DOM's replaceChildren writes a null as the text "null": leave out what is not there.
    mineBox.replaceChildren(...[h("h2", {}, "My entries"),
      h("p", { id: "my-entries" }, `${yours.entries_used} made${left}.`),
      yours.experiment_ids.length ? h("ol", {}, yours.experiment_ids.map((id) =>
        h("li", {}, h("a", { href: `#/experiments/${id}` }, id.slice(0, 8))))) : null].filter(Boolean));
    actions.replaceChildren(...[
      challenge.open ? h("a", { class: "button primary", href: `#/new?challenge=${id}` }, "Enter a net") : null,
      h("a", { class: "button", href: `#/experiments?tag=${encodeURIComponent(challenge.tag)}` }, "Every entry"),
      downloadLink(`/challenges/${id}/leaderboard?format=csv`, "Leaderboard as CSV"),
      challenge.open ? h("button", { type: "button", id: "close-challenge", onclick: closeNow }, "Close now (teacher)") : null].filter(Boolean));
  }

  async function closeNow() {
    if (!confirm(`Close “${challenge.name}” now? No more entries; the private half decides.`)) return;
    try {
      await post(`/challenges/${id}/close`, {});
      await refresh();
    } catch (e) {
      note.replaceChildren(h("span", { class: "notice bad" }, e instanceof ApiError ? e.message : String(e)));
    }
  }

  await refresh();
  let pending = null;
  const later = () => { clearTimeout(pending); pending = setTimeout(() => refresh().catch(() => {}), REFRESH_DELAY_MS); };
  // An entry that finishes changes the board; so does the close time passing.
  const stream = subscribe("/events", (event) => {
    if (event.type === "status" && event.data && event.data.status === "succeeded") later();
  });
  const tick = setInterval(() => {
    if (!challenge || !challenge.open || challenge.seconds_left == null) return;
    challenge.seconds_left -= 1;
    document.getElementById("challenge-state").textContent = state(challenge);
    if (challenge.seconds_left <= 0) later();
  }, 1000);
  return () => { stream.end(); clearTimeout(pending); clearInterval(tick); };
}
