// The lab page's router: one view module per section (views/*.js), chosen by the URL's hash.
// Each view's render(main, params, query) draws into <main> and returns a function that stops
// it (closes its event streams) when the person goes elsewhere. `params` holds the hash's query
// one value a name; `query` is the whole URLSearchParams, for names given more than once.

import { askForToken, config, forgetToken, get, me, token } from "./api.js";
import { h } from "./format.js";

const VIEWS = {
  experiments: () => import("./views/experiments.js"),
  experiment: () => import("./views/experiment.js"),
  new: () => import("./views/new.js"),
  studies: () => import("./views/studies.js"),
  study: () => import("./views/study.js"),
  challenges: () => import("./views/challenges.js"),
  challenge: () => import("./views/challenge.js"),
  compare: () => import("./views/compare.js"),
  draw: () => import("./views/draw.js"),
  class: () => import("./views/class.js"),
};

let stop = null;

function parse(hash) {
  const [path, query = ""] = hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").filter(Boolean);
  const search = new URLSearchParams(query);
  const params = Object.fromEntries(search);
  if (parts[0] === "experiments" && parts[1]) return { view: "experiment", section: "experiments", params: { ...params, id: parts[1] }, search };
  if (parts[0] === "studies" && parts[1]) return { view: "study", section: "studies", params: { ...params, id: parts[1] }, search };
  if (parts[0] === "challenges" && parts[1]) return { view: "challenge", section: "challenges", params: { ...params, id: parts[1] }, search };
  const view = VIEWS[parts[0]] ? parts[0] : "experiments";
  return { view, section: view, params, search };
}

async function route() {
  const { view, section, params, search } = parse(location.hash);
  if (stop) stop();
  stop = null;
  for (const link of document.querySelectorAll(".top nav a[data-section]")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const main = document.getElementById("view");
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    const module = await VIEWS[view]();
    stop = (await module.render(main, params, search)) || null;
  } catch (error) {
    main.replaceChildren(h("div", { class: "notice bad", role: "alert" }, `Could not show this page: ${error.message}`));
  }
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// Who this tab is signed in as: the header names them; a teacher gets the Class view.
async function whoAmI() {
  Object.assign(me, await get("/people/me").catch(() => ({ name: null, role: null, signed_in: false, teacher: false })));
  const signedIn = me.signed_in;
  document.getElementById("who-name").textContent = signedIn
    ? `Signed in as ${me.name || "the teacher"}${me.role ? ` (${me.role})` : ""}`
    : "";
  document.getElementById("sign-in").hidden = signedIn;
  document.getElementById("sign-out").hidden = !token();
  document.getElementById("class-link").hidden = !(me.teacher && (signedIn || config.class));
}

async function start() {
  if (config.token_required && !token()) await askForToken("");
  document.getElementById("sign-in").addEventListener("click", async () => {
    await askForToken("");
    await whoAmI();
    route();
  });
  document.getElementById("sign-out").addEventListener("click", () => {
    forgetToken();
    location.reload();
  });
  await whoAmI();
  window.addEventListener("hashchange", route);
  route();
}

start();
