// Which optional endpoints this service has (evaluation, layer health, rerun, download, …),
// read once from its OpenAPI document, so views show them where they exist.

let paths = null;

export async function has(method, path) {
  if (!paths) {
    try {
      paths = (await (await fetch("/openapi.json")).json()).paths || {};
    } catch {
      paths = {};
    }
  }
  return Boolean(paths[path]?.[method.toLowerCase()]);
}
