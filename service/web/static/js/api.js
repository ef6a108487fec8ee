// The one way the page talks to the service: JSON requests with the token, and event streams.

const TOKEN_KEY = "mnist-lab-token";
export const config = JSON.parse(document.getElementById("lab-config").textContent);

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
  // [{loc: [...], msg}] for a 422; loc without the leading "body" and without the type
  // names a tagged union adds (layers.1.Dropout.rate is the field layers.1.rate).
  get fields() {
    const plain = (part) => part !== "body" && !(typeof part === "string" && /^[A-Z]/.test(part));
    return (this.body.details || []).map((d) => ({ loc: (d.loc || []).filter(plain), msg: d.msg }));
  }
}

// Who the token makes this tab (GET /people/me): {name, role, signed_in, teacher}.
export const me = { name: null, role: null, signed_in: false, teacher: false };

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

let asking = null;
// Ask for the token once (a dialog), keep it for this tab; resolves when one is given.
export function askForToken(message = "") {
  if (asking) return asking;
  const dialog = document.getElementById("token-dialog");
  const form = document.getElementById("token-form");
  document.getElementById("token-error").textContent = message;
  asking = new Promise((resolve) => {
    form.addEventListener("submit", function done() {
      form.removeEventListener("submit", done);
      sessionStorage.setItem(TOKEN_KEY, form.token.value.trim());
      asking = null;
      resolve();
    });
  });
  // Escape would close the dialog and leave the page waiting for a token that never comes
  // (unless the service is open, when signing in is a choice).
  dialog.oncancel = (event) => { if (config.token_required) event.preventDefault(); else { asking = null; } };
  if (!dialog.open) dialog.showModal();
  form.token.focus();
  return asking;
}

function headers(extra = {}) {
  const h = { ...extra };
  if (token()) h.Authorization = `Bearer ${token()}`;
  return h;
}

export async function request(method, path, { json, form, retry = true } = {}) {
  const init = { method, headers: headers() };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form) {
    init.body = form;
  }
  const response = await fetch(path, init);
  if (response.status === 401 && retry && config.token_required) {
    await askForToken(token() ? "That token was refused; try again." : "");
    return request(method, path, { json, form, retry: true });
  }
  if (response.status === 204) return null;
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export const get = (path) => request("GET", path);
export const post = (path, json) => request("POST", path, { json });
export const del = (path) => request("DELETE", path);

// A GET whose Response the caller reads itself (a 202 to retry, a picture, a download); with
// the token, which <img src> and <a href> cannot send.
export async function fetchRaw(path) {
  const response = await fetch(path, { headers: headers() });
  if (response.status === 401 && config.token_required) {
    await askForToken(token() ? "That token was refused; try again." : "");
    return fetchRaw(path);
  }
  return response;
}

// An <img> of a picture the service draws (SVG or PNG), fetched with the token.
export function picture(path, alt, attrs = {}) {
  const img = document.createElement("img");
  img.alt = alt;
  for (const [key, value] of Object.entries(attrs)) img.setAttribute(key, value);
  fetchRaw(path).then(async (response) => {
    if (!response.ok) throw new ApiError(response.status, null);
    const old = img.src;
    img.src = URL.createObjectURL(await response.blob());
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
  }).catch(() => { img.replaceWith(Object.assign(document.createElement("span"), { className: "muted", textContent: `(${alt}: not available)` })); });
  return img;
}

// A download link; with a token it fetches the file itself and saves it under the service's name.
export function downloadLink(path, label) {
  const link = document.createElement("a");
  link.href = path;
  link.className = "button";
  link.setAttribute("download", "");
  link.textContent = label;
  link.addEventListener("click", async (event) => {
    if (!token()) return;
    event.preventDefault();
    const response = await fetchRaw(path);
    if (!response.ok) return;
    const name = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "")?.[1] || "download";
    const url = URL.createObjectURL(await response.blob());
    Object.assign(document.createElement("a"), { href: url, download: name }).click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
  return link;
}

// Server-Sent Events over fetch (EventSource cannot send the token). Reconnects after a break
// with Last-Event-ID, so nothing is missed or repeated; a 204 or `end()` stops it.
export function subscribe(path, onEvent, { onEnd } = {}) {
  let lastId = null;
  let stopped = false;
  const controller = { abort: null };
  async function connect() {
    while (!stopped) {
      const abort = new AbortController();
      controller.abort = abort;
      try {
        const h = headers({ Accept: "text/event-stream" });
        if (lastId !== null) h["Last-Event-ID"] = String(lastId);
        const response = await fetch(path, { headers: h, signal: abort.signal });
        if (response.status === 204 || response.status === 404) break;
        if (response.status === 401 && config.token_required) {
          await askForToken("");
          continue;
        }
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const event = parseBlock(block);
            if (!event) continue;
            lastId = event.id;
            onEvent(event);
          }
        }
        // A stream for one experiment ends with it; the global one only when the server stops.
        if (path !== "/events") break;
      } catch (error) {
        if (stopped) break;
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 2000));
    }
    if (onEnd && !stopped) onEnd();
  }
  connect();
  return {
    end() {
      stopped = true;
      if (controller.abort) controller.abort.abort();
    },
  };
}

function parseBlock(block) {
  const event = { id: null, type: "message", data: null };
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const at = line.indexOf(":");
    const name = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
    if (name === "id") event.id = Number(value);
    else if (name === "event") event.type = value;
    else if (name === "data") event.data = JSON.parse(value);
  }
  return event.id === null ? null : event;
}
