// Numbers for people: 0.9451, 1.9 s/epoch, 266,610.

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export const count = (n) => (n == null ? "–" : integer.format(n));
export const score = (x) => (x == null || Number.isNaN(x) ? "–" : x.toFixed(4));
export const percent = (x) => (x == null ? "–" : `${(100 * x).toFixed(1)} %`);
export function seconds(s) {
  if (s == null || Number.isNaN(s)) return "–";
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 120) return `${Math.round(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}
export const perEpoch = (s) => (s == null ? "–" : `${seconds(s)}/epoch`);
export function when(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
export function shape(dims) {
  return `(${dims.map((d) => (d == null ? "None" : d)).join(", ")})`;
}

// Build elements without innerHTML: h("td", {class: "num"}, "0.9451").
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    else if (key === "style") el.style.cssText = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export const badge = (status) => h("span", { class: `badge ${status}` }, status);
// Each tag links to the list of the experiments that have it.
export const tagChips = (tags) => (tags?.length ? h("span", { class: "tags" }, tags.map((t) =>
  h("a", { class: "tag", href: `#/experiments?tag=${encodeURIComponent(t)}`, title: `every experiment tagged ${t}` }, t))) : null);
export function ordinal(n) {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  return `${n}${teen ? "th" : ["th", "st", "nd", "rd"][n % 10] || "th"}`;
}
export const TERMINAL = ["succeeded", "failed", "cancelled", "pruned"];
