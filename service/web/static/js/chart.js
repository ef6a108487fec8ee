// Line charts as SVG: several series over epochs, drawn again whenever a point arrives.

import { h } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
export const PALETTE = ["#1f4e79", "#c2561a", "#1e6b3a", "#7b3f98", "#a3261b", "#00707a", "#6b5b00", "#444c56"];

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text != null) el.textContent = text;
  return el;
}

// Round tick steps (1, 2, 2.5 or 5 times a power of ten) from min to max, about `count` of them.
export function ticks(min, max, count = 4) {
  if (!(max - min > 1e-9)) { min -= 0.05; max += 0.05; }
  const rough = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough * 0.999);
  let decimals = 0;
  while (decimals < 8 && Math.abs(Math.round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-6) decimals++;
  const low = Math.floor(min / step + 1e-9) * step;
  const high = Math.ceil(max / step - 1e-9) * step;
  const values = [];
  for (let v = low; v <= high + step / 2; v += step) values.push(Number(v.toFixed(decimals)));
  return { values, decimals };
}

// series: [{label, color, dashed, points: [[epoch, value], ...]}]; `range`: the values the
// metric can take ([0, 1] for an accuracy, [0, Infinity] for a loss), so no axis reads -0.02
// or 1.006.
export function lineChart({ title, series, yLabel, range = [-Infinity, Infinity], width = 560, height = 300 }) {
  const pad = { left: 56, right: 12, top: 12, bottom: 40 };
  const all = series.flatMap((line) => line.points.filter(([, y]) => y != null && Number.isFinite(y)));
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => y);
  const xMax = Math.max(2, ...xs);
  const axis = ticks(ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1);
  const inRange = axis.values.filter((v) => v >= range[0] - 1e-9 && v <= range[1] + 1e-9);
  const yTicks = inRange.length >= 2 ? inRange : axis.values;
  const yMin = yTicks[0];
  const yMax = yTicks[yTicks.length - 1];
  const X = (x) => pad.left + ((x - 1) / (xMax - 1)) * (width - pad.left - pad.right);
  const Y = (y) => pad.top + (1 - (y - yMin) / (yMax - yMin)) * (height - pad.top - pad.bottom);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": title });
  svg.append(s("title", {}, title));
  for (const y of yTicks) {
    svg.append(s("line", { x1: pad.left, x2: width - pad.right, y1: Y(y), y2: Y(y), class: "gridline" }));
    svg.append(s("text", { x: pad.left - 6, y: Y(y) + 4, "text-anchor": "end", class: "tick" }, y.toFixed(axis.decimals)));
  }
  const step = Math.max(1, Math.ceil(xMax / 10));
  for (let x = 1; x <= xMax; x += step) {
    svg.append(s("text", { x: X(x), y: height - pad.bottom + 18, "text-anchor": "middle" }, x));
  }
  svg.append(s("text", { x: (pad.left + width - pad.right) / 2, y: height - 4, "text-anchor": "middle" }, "epoch"));
  svg.append(s("line", { x1: pad.left, x2: pad.left, y1: pad.top, y2: height - pad.bottom, class: "axis" }));
  svg.append(s("line", { x1: pad.left, x2: width - pad.right, y1: height - pad.bottom, y2: height - pad.bottom, class: "axis" }));
  for (const line of series) {
    const points = line.points.filter(([, y]) => y != null && Number.isFinite(y));
    if (!points.length) continue;
    const d = points.map(([x, y], i) => `${i ? "L" : "M"}${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(" ");
    const attrs = { d, fill: "none", stroke: line.color, "stroke-width": 2.5, "data-series": line.label };
    if (line.dashed) attrs["stroke-dasharray"] = "6 4";
    svg.append(s("path", attrs));
    for (const [x, y] of points) svg.append(s("circle", { cx: X(x), cy: Y(y), r: 3, fill: line.color }));
  }
  const legend = h("ul", { class: "legend" },
    series.map((line) => h("li", { style: `color:${line.color}` },
      h("span", { class: `swatch${line.dashed ? " dashed" : ""}`, style: line.dashed ? "" : `background:${line.color}` }),
      h("span", { style: "color: var(--ink)" }, line.label))));
  return h("figure", { class: "figure", style: "margin:0", "data-title": title }, h("figcaption", {}, h("strong", {}, title)), svg, legend);
}

// The two charts of a history: loss and accuracy, training (solid) vs validation (dashed).
export function learningCurves(epochs) {
  const pts = (key) => epochs.map((e) => [e.epoch, e[key]]);
  return h("div", { class: "grid" },
    lineChart({ title: "Loss", yLabel: "loss", range: [0, Infinity], series: [
      { label: "training", color: "#1f4e79", points: pts("loss") },
      { label: "validation", color: "#c2561a", dashed: true, points: pts("val_loss") },
    ] }),
    lineChart({ title: "Accuracy", yLabel: "accuracy", range: [0, 1], series: [
      { label: "training", color: "#1f4e79", points: pts("accuracy") },
      { label: "validation", color: "#c2561a", dashed: true, points: pts("val_accuracy") },
    ] }));
}
