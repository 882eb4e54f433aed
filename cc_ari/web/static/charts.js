// charts.js — today's 15-minute intervals as hand-written SVG (no library: two small charts do
// not justify a dependency, and nothing has to be vendored or licensed). Drawn from the
// "intervals" message of /api/live (report.queue_intervals rows) and redrawn only when it
// changes or the queue filter does. Each bar group and point carries a <title> (the tooltip).
//
// Test ids: chart-volume, chart-sl (the containers; see dashboard.html); each interval's bar
// group is data-testid="chart-slot" with data-start="<epoch>".

import { clock } from "./live.js";

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, String(v));
  node.append(...children);
  return node;
}

function title(text) {
  const t = svg("title");
  t.textContent = text;
  return t;
}

function hhmm(epoch) {
  return new Date(epoch * 1000).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", hour12: false });
}

// Rows of one queue (or all, summed), by interval start. Service level across queues is
// weighted by the calls it is over (offered minus short abandons).
export function aggregate(rows, queue) {
  const by = new Map();
  for (const r of rows || []) {
    if (queue && r.queue !== queue) continue;
    const t = r.interval_start;
    let a = by.get(t);
    if (!a) {
      a = { t, offered: 0, answered: 0, abandoned: 0, slNum: 0, slDen: 0 };
      by.set(t, a);
    }
    a.offered += r.offered || 0;
    a.answered += r.answered || 0;
    a.abandoned += r.abandoned || 0;
    if (r.service_level != null) {
      const w = Math.max((r.offered || 0) - (r.short_abandoned || 0), r.answered || 0, 1);
      a.slNum += r.service_level * w;
      a.slDen += w;
    }
  }
  for (const a of by.values()) a.sl = a.slDen ? a.slNum / a.slDen : null;
  return by;
}

// The slots shown: the working part of the day — from the first interval with data (or six
// hours ago) to now (or the last interval), whole hours.
function slotsOf(by, step) {
  const now = clock.now();
  const day = new Date(now * 1000);
  day.setHours(0, 0, 0, 0);
  const dayStart = day.getTime() / 1000;
  const hour = 3600;
  const starts = [...by.keys()];
  const first = starts.length ? Math.min(...starts) : Infinity;
  const last = starts.length ? Math.max(...starts) : -Infinity;
  let from = Math.min(first, Math.floor(now / hour) * hour - 6 * hour);
  from = Math.max(from, Math.min(dayStart, first));
  from = Math.floor(from / hour) * hour;
  const to = Math.ceil(Math.max(now, last + step) / hour) * hour;
  const out = [];
  for (let t = from; t < to && out.length < 24 * 3600 / step + 4; t += step) out.push(t);
  return out;
}

// A y scale with round ticks: about four steps of 1, 2 or 5 × 10^k.
function niceScale(peak) {
  if (peak <= 4) return { max: 4, ticks: 4 };
  const raw = peak / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
  const ticks = Math.ceil(peak / step);
  return { max: step * ticks, ticks };
}

let W = 960; // the drawing's width: the container's, so text keeps its size
const M = { l: 40, r: 10, t: 10, b: 22 };

function axisX(g, slots, x, height) {
  const everyHours = slots.length > 48 ? 2 : 1;
  slots.forEach((t, i) => {
    const d = new Date(t * 1000);
    if (d.getMinutes() !== 0 || d.getHours() % everyHours) return;
    const lx = x(i);
    g.append(svg("line", { x1: lx, x2: lx, y1: height - M.b, y2: height - M.b + 4, class: "tick" }));
    const label = svg("text", { x: lx, y: height - 6, class: "label", "text-anchor": "middle" });
    label.textContent = hhmm(t);
    g.append(label);
  });
}

function axisY(g, height, max, fmt, ticks = 4) {
  const plotH = height - M.t - M.b;
  for (let k = 0; k <= ticks; k++) {
    const v = (max * k) / ticks;
    const y = height - M.b - (plotH * k) / ticks;
    g.append(svg("line", { x1: M.l, x2: W - M.r, y1: y, y2: y, class: k ? "grid" : "axis" }));
    const label = svg("text", { x: M.l - 6, y: y + 4, class: "label", "text-anchor": "end" });
    label.textContent = fmt(v);
    g.append(label);
  }
}

export function renderVolume(container, by, step) {
  W = Math.max(480, Math.round(container.clientWidth || 960));
  const height = 190;
  const slots = slotsOf(by, step);
  const n = Math.max(slots.length, 1);
  const plotW = W - M.l - M.r;
  const bw = plotW / n;
  const x = (i) => M.l + i * bw;
  let peak = 0;
  for (const t of slots) peak = Math.max(peak, by.get(t)?.offered || 0);
  const { max, ticks } = niceScale(peak);
  const plotH = height - M.t - M.b;
  const y = (v) => height - M.b - (plotH * v) / max;
  const root = svg("svg", { viewBox: `0 0 ${W} ${height}`, class: "volume", role: "img",
                            "aria-label": "offered, answered and abandoned calls per interval" });
  const g = svg("g");
  axisY(g, height, max, (v) => String(Math.round(v)), ticks);
  axisX(g, slots, x, height);
  root.append(g);
  const pad = Math.min(2, bw * 0.15);
  slots.forEach((t, i) => {
    const a = by.get(t);
    if (!a || !(a.offered || a.answered || a.abandoned)) return;
    const slot = svg("g", { "data-testid": "chart-slot", "data-start": t },
      title(`${hhmm(t)}–${hhmm(t + step)}: offered ${a.offered}, answered ${a.answered}, `
            + `abandoned ${a.abandoned}, service level ${a.sl == null ? "–" : `${Math.round(a.sl * 100)}%`}`));
    const bx = x(i) + pad;
    const w = Math.max(bw - 2 * pad, 1);
    slot.append(svg("rect", { x: bx, y: y(a.offered), width: w, height: Math.max(y(0) - y(a.offered), 0),
                              class: "offered" }));
    slot.append(svg("rect", { x: bx, y: y(a.answered), width: w, height: Math.max(y(0) - y(a.answered), 0),
                              class: "answered" }));
    const top = a.answered + a.abandoned;
    slot.append(svg("rect", { x: bx, y: y(top), width: w, height: Math.max(y(a.answered) - y(top), 0),
                              class: "abandoned" }));
    root.append(slot);
  });
  container.replaceChildren(root);
}

export function renderServiceLevel(container, by, step, target = 0.8) {
  W = Math.max(480, Math.round(container.clientWidth || 960));
  const height = 130;
  const slots = slotsOf(by, step);
  const n = Math.max(slots.length, 1);
  const plotW = W - M.l - M.r;
  const bw = plotW / n;
  const cx = (i) => M.l + i * bw + bw / 2;
  const plotH = height - M.t - M.b;
  const y = (v) => height - M.b - plotH * v;
  const root = svg("svg", { viewBox: `0 0 ${W} ${height}`, class: "sl", role: "img",
                            "aria-label": "service level per interval" });
  const g = svg("g");
  axisY(g, height, 1, (v) => `${Math.round(v * 100)}%`);
  axisX(g, slots, (i) => M.l + i * bw, height);
  g.append(svg("line", { x1: M.l, x2: W - M.r, y1: y(target), y2: y(target), class: "target" }));
  root.append(g);
  let d = "";
  let pen = false;
  const dots = svg("g");
  slots.forEach((t, i) => {
    const a = by.get(t);
    if (!a || a.sl == null) {
      pen = false;
      return;
    }
    d += `${pen ? "L" : "M"}${cx(i).toFixed(1)},${y(a.sl).toFixed(1)}`;
    pen = true;
    dots.append(svg("circle", { cx: cx(i), cy: y(a.sl), r: 2.5, class: a.sl >= target ? "ok" : "low" },
      title(`${hhmm(t)}: service level ${Math.round(a.sl * 100)}% (offered ${a.offered})`)));
  });
  root.append(svg("path", { d: d || "M0,0", class: "line" }), dots);
  container.replaceChildren(root);
}
