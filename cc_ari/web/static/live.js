// live.js — what the dashboard and the agent desktop share (docs/operations.md is the contract):
//   * the session: the token in sessionStorage, the sign-in form, GET /api/whoami;
//   * api(): REST calls with the bearer token; a failure is an ApiError carrying the server's
//     JSON {"error": ...} text, shown with toast();
//   * Store: the live state keyed by entity (agents, queues, calls, campaigns, monitors), the AMI
//     ring and today's intervals, with the set of keys changed since the last render;
//   * Live: the /api/live WebSocket client. It reconnects with exponential backoff and jitter
//     (0.5 s doubling to 15 s; a bad token, close code 4401/4403, stops it). A message is applied
//     to the Store at once (cheap: a Map set), and rendering is batched in one
//     requestAnimationFrame per frame and at most one per `minFrameMs` (the dashboard: 100 ms,
//     so a burst of changes costs one style/layout/paint pass; a timer of 250 ms when the page
//     is hidden), given only what changed; after every reconnection the snapshot between "hello" and "synced" replaces
//     the state (entities not in it are dropped);
//   * Timers: cells that count up from an epoch timestamp, refreshed by one 1-s local timer
//     (display only: the server is never polled), corrected by the server clock from "hello".
//
// Test ids (data-testid) of the shared page parts, in templates/base.html:
//   signin, signin-form, signin-token, signin-submit, signin-error — the sign-in form
//   app — the page body, shown once signed in; whoami — "role · agent" of the token
//   live-status — the connection, with data-state="connecting|syncing|live|offline|refused"
//   signout — forget the token; errors — the toast area, each toast is data-testid="error-message"
//
// For tests and the benchmark, window.ccLive = {store, stats}; stats counts messages, frames,
// time spent applying (applyMs) and rendering (renderMs), and when a message carries the optional
// `sent_at` (epoch s; only the benchmark's fake server sends it), the latency from send to DOM
// updated (latencies, ms).

const TOKEN_KEY = "cc.token";
export const $ = (sel, root = document) => root.querySelector(sel);
export const byTestId = (id, root = document) => root.querySelector(`[data-testid="${id}"]`);

// ---------------------------------------------------------------- session + REST

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY) || ""; },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  role: null,
  agent: null,
};

export function canControl() {
  return session.role === "admin" || session.role === "supervisor";
}

export async function api(method, path, body, token = session.token) {
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (exc) {
    throw new ApiError(0, `the service does not answer (${exc.message})`);
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!resp.ok) {
    const why = data && typeof data.error === "string" ? data.error : `${resp.status} ${resp.statusText}`;
    throw new ApiError(resp.status, why);
  }
  return data;
}

export function agentPath(agent, action) {
  return `/api/agents/${encodeURIComponent(agent)}/${action}`;
}

// Runs `fn` (an API call) with `button` disabled; an error becomes a toast. Returns fn's result
// or undefined on error. `after` runs last, e.g. to re-render what decides the button's state
// (the live update may have come before the response).
export async function act(button, label, fn, after = null) {
  if (button) button.disabled = true;
  try {
    return await fn();
  } catch (exc) {
    toast(`${label}: ${exc.message}`);
    return undefined;
  } finally {
    if (button) button.disabled = false;
    after?.();
  }
}

export function toast(message, { timeout = 10000 } = {}) {
  const area = byTestId("errors");
  if (!area) return;
  const el = document.createElement("div");
  el.className = "toast";
  el.setAttribute("role", "alert");
  el.dataset.testid = "error-message";
  const text = document.createElement("span");
  text.textContent = message;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "link";
  close.textContent = "×";
  close.title = "dismiss";
  close.addEventListener("click", () => el.remove());
  el.append(text, close);
  area.append(el);
  while (area.childElementCount > 5) area.firstElementChild.remove();
  setTimeout(() => el.remove(), timeout);
}

// Sign-in: a stored token is checked with /api/whoami, else the form asks for one.
// `accept(who)` returns null when this page serves that token, else the reason it does not.
export function boot({ accept, start }) {
  const signin = byTestId("signin");
  const form = byTestId("signin-form");
  const input = byTestId("signin-token");
  const error = byTestId("signin-error");
  const app = byTestId("app");
  const signout = byTestId("signout");
  const who = byTestId("whoami");

  signout.addEventListener("click", () => {
    session.token = "";
    location.reload();
  });

  const showForm = (message) => {
    app.hidden = true;
    signout.hidden = true;
    who.hidden = true;
    signin.hidden = false;
    error.textContent = message || "";
    error.hidden = !message;
    input.focus();
  };

  const tryToken = async (token) => {
    let me;
    try {
      me = await api("GET", "/api/whoami", undefined, token);
    } catch (exc) {
      showForm(exc.status === 401 ? "This token is not valid." : exc.message);
      return;
    }
    const refusal = accept(me);
    if (refusal) {
      showForm(refusal);
      return;
    }
    session.token = token;
    session.role = me.role;
    session.agent = me.agent ?? null;
    signin.hidden = true;
    app.hidden = false;
    signout.hidden = false;
    who.hidden = false;
    who.textContent = session.agent ? `${session.role} · ${session.agent}` : session.role;
    document.body.classList.toggle("can-control", canControl());
    start();
  };

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    input.value = "";
    if (token) tryToken(token);
  });

  if (session.token) tryToken(session.token);
  else showForm("");
}

// ---------------------------------------------------------------- clock, timers, formatting

export const clock = {
  offset: 0, // server - local, seconds
  now() { return Date.now() / 1000 + this.offset; },
};

export function fmtDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

export function fmtPct(x, digits = 0) {
  return x == null || !Number.isFinite(x) ? "–" : `${(x * 100).toFixed(digits)}%`;
}

export function fmtSecs(x) {
  return x == null || !Number.isFinite(x) ? "–" : `${Math.round(x)} s`;
}

export function fmtClock(epoch, ms = false) {
  const d = new Date(epoch * 1000);
  const t = d.toLocaleTimeString(undefined, { hour12: false });
  return ms ? `${t}.${String(d.getMilliseconds()).padStart(3, "0")}` : t;
}

// textContent only when it changed (reading a cached copy, not the DOM).
export function setText(el, value) {
  const v = value == null ? "" : String(value);
  if (el._text !== v) {
    el._text = v;
    el.textContent = v;
  }
}

export function setAttr(el, name, value) {
  const v = value == null ? "" : String(value);
  if (el.getAttribute(name) !== v) el.setAttribute(name, v);
}

export const naturalOrder = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" }).compare;

// Cells counting up from `since` (epoch s) to `until` (or now), refreshed every second.
export class Timers {
  constructor() {
    this.cells = new Map();
    setInterval(() => this.tick(), 1000);
  }

  set(el, since, until = null) {
    if (since == null) {
      this.cells.delete(el);
      setText(el, "");
      return;
    }
    this.cells.set(el, { since, until });
    setText(el, fmtDuration((until ?? clock.now()) - since));
  }

  delete(el) { this.cells.delete(el); }

  tick() {
    const t0 = performance.now();
    const now = clock.now();
    for (const [el, { since, until }] of this.cells) {
      if (!el.isConnected) {
        this.cells.delete(el);
        continue;
      }
      if (until == null) setText(el, fmtDuration(now - since));
    }
    stats.tickMs += performance.now() - t0;
    stats.ticks += 1;
  }
}

// ---------------------------------------------------------------- store

const KEYS = { agent: "agent", queue: "queue", call: "call_id", campaign: "campaign", monitor: "monitor_id" };
const AMI_KEEP = 1000;

export class Store {
  constructor() {
    this.agent = new Map();
    this.queue = new Map();
    this.call = new Map();
    this.campaign = new Map();
    this.monitor = new Map();
    this.ami = []; // newest last, at most AMI_KEEP
    this.amiSeq = 0;
    this.amiSkipped = 0; // events the server left out of a burst ("ami_skipped")
    this.intervals = null;
    this.hello = null;
    this.synced = false;
    this._seen = null; // during a snapshot: the keys it has named
    this.dirty = Store.fresh();
  }

  static fresh() {
    return { agent: new Set(), queue: new Set(), call: new Set(), campaign: new Set(), monitor: new Set(),
             ami: false, intervals: false, hello: false, synced: false };
  }

  takeDirty() {
    const d = this.dirty;
    this.dirty = Store.fresh();
    return d;
  }

  touch(kind, key) { this.dirty[kind].add(key); }

  apply(msg) {
    const type = msg.type;
    if (type in KEYS) {
      const key = msg[KEYS[type]];
      if (key == null) return;
      const map = this[type];
      if (msg.gone || (type === "monitor" && msg.state === "ended")) {
        map.delete(key);
      } else {
        map.set(key, { ...map.get(key), ...msg });
        if (this._seen) this._seen[type].add(key);
      }
      this.dirty[type].add(key);
    } else if (type === "ami") {
      this.amiSeq += 1;
      this.ami.push({ seq: this.amiSeq, ts: msg.ts, event: msg.event || "", fields: msg.fields || {} });
      if (this.ami.length > AMI_KEEP * 1.25) this.ami.splice(0, this.ami.length - AMI_KEEP);
      this.dirty.ami = true;
    } else if (type === "ami_skipped") {
      this.amiSkipped += Number(msg.count) || 0;
      this.dirty.ami = true;
    } else if (type === "intervals") {
      this.intervals = msg;
      this.dirty.intervals = true;
    } else if (type === "hello") {
      this.hello = msg;
      this.synced = false;
      if (typeof msg.server_time === "number") clock.offset = msg.server_time - Date.now() / 1000;
      this._seen = Object.fromEntries(Object.keys(KEYS).map((k) => [k, new Set()]));
      this.dirty.hello = true;
    } else if (type === "synced") {
      if (this._seen) {
        for (const kind of Object.keys(KEYS)) {
          for (const key of this[kind].keys()) {
            if (!this._seen[kind].has(key)) {
              this[kind].delete(key);
              this.dirty[kind].add(key);
            }
          }
        }
      }
      this._seen = null;
      this.synced = true;
      this.dirty.synced = true;
    }
  }
}

// ---------------------------------------------------------------- the WebSocket client

export const stats = {
  messages: 0, frames: 0, applyMs: 0, renderMs: 0, maxFrameMs: 0, connects: 0,
  latencies: [], syncedAt: null, ticks: 0, tickMs: 0,
};

export class Live {
  constructor({ store, render, token = () => session.token, onRefused = () => {}, minFrameMs = 0 }) {
    this.minFrameMs = minFrameMs;
    this.lastFlush = -Infinity;
    this.waitTimer = 0;
    this.store = store;
    this.render = render;
    this.token = token;
    this.onRefused = onRefused;
    this.ws = null;
    this.attempt = 0;
    this.retryTimer = 0;
    this.frame = 0;
    this.hiddenTimer = 0;
    this.lastError = "";
    this.pendingLatency = [];
    this.stopped = false;
    this.flush = this.flush.bind(this);
    window.ccLive = { store, stats };
    window.addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => { if (this.hasDirty()) this.schedule(); });
  }

  status(state, text = state) {
    document.body.dataset.live = state; // the page dims what it shows while it is not live
    const el = byTestId("live-status");
    if (!el) return;
    el.dataset.state = state;
    setText(el, text);
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  connect() {
    clearTimeout(this.retryTimer);
    const url = new URL("/api/live", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    // The token goes as the first message, not in the URL: URLs end up in consoles and logs.
    this.status("connecting");
    const ws = new WebSocket(url);
    this.ws = ws;
    stats.connects += 1;
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify({ token: this.token() }));
      this.status("syncing");
    });
    ws.addEventListener("message", (ev) => this.receive(ev.data));
    ws.addEventListener("close", (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (ev.code === 4401 || ev.code === 4403) {
        this.stopped = true;
        this.status("refused", "refused");
        this.onRefused(this.lastError || "the server refused this token");
        return;
      }
      if (!this.stopped) this.retry();
    });
  }

  retry() {
    const base = Math.min(15000, 500 * 2 ** this.attempt);
    this.attempt += 1;
    const delay = Math.round(base * (0.5 + Math.random() * 0.5));
    this.status("offline", `offline · retry in ${Math.ceil(delay / 1000)} s`);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.stopped || this.ws) return;
    this.attempt = 0;
    this.connect();
  }

  receive(data) {
    const t0 = performance.now();
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    stats.messages += 1;
    if (msg.type === "error") {
      this.lastError = String(msg.error || "error");
      return;
    }
    this.store.apply(msg);
    if (msg.type === "synced") {
      this.attempt = 0;
      this.status("live");
    }
    if (typeof msg.sent_at === "number") this.pendingLatency.push(msg.sent_at);
    stats.applyMs += performance.now() - t0;
    this.schedule();
  }

  hasDirty() {
    const d = this.store.dirty;
    return d.ami || d.intervals || d.hello || d.synced ||
      d.agent.size || d.queue.size || d.call.size || d.campaign.size || d.monitor.size;
  }

  // One render per animation frame, at most one per minFrameMs (messages arriving meanwhile are
  // rendered together); when the page is hidden (no frames), every 250 ms.
  schedule() {
    if (this.frame || this.hiddenTimer || this.waitTimer) return;
    const wait = this.lastFlush + this.minFrameMs - performance.now();
    if (wait > 1) {
      this.waitTimer = setTimeout(() => {
        this.waitTimer = 0;
        this.schedule();
      }, wait);
    } else if (document.visibilityState === "visible") {
      this.frame = requestAnimationFrame(this.flush);
    } else {
      this.hiddenTimer = setTimeout(this.flush, 250);
    }
  }

  flush() {
    cancelAnimationFrame(this.frame);
    clearTimeout(this.hiddenTimer);
    this.frame = 0;
    this.hiddenTimer = 0;
    const t0 = performance.now();
    this.lastFlush = t0;
    const dirty = this.store.takeDirty();
    try {
      this.render(dirty, this.store);
    } catch (exc) {
      console.error("render failed", exc);
    }
    const ms = performance.now() - t0;
    stats.frames += 1;
    stats.renderMs += ms;
    stats.maxFrameMs = Math.max(stats.maxFrameMs, ms);
    if (dirty.synced && stats.syncedAt == null) {
      stats.syncedAt = performance.now();
      performance.mark("cc-synced-rendered");
      // the frame after the one that painted it
      requestAnimationFrame(() => setTimeout(() => performance.mark("cc-synced-painted"), 0));
    }
    if (this.pendingLatency.length) {
      const now = Date.now();
      for (const sent of this.pendingLatency) stats.latencies.push(now - sent * 1000);
      this.pendingLatency.length = 0;
      if (stats.latencies.length > 20000) stats.latencies.splice(0, 10000);
    }
  }

  // Local changes (e.g. a monitor just started) rendered in the next frame.
  changed() { this.schedule(); }
}

// A keyed list of rows in one parent (tbody or card grid), kept in `compare` order. A row is
// created by make(key) -> {el, update(value), destroy?()}; rows never move once placed unless
// their sort key changes (`moved`).
export class KeyedList {
  constructor(parent, { make, compare = naturalOrder }) {
    this.parent = parent;
    this.make = make;
    this.compare = compare;
    this.rows = new Map();
    this.order = []; // keys, sorted
  }

  get size() { return this.rows.size; }

  _index(key) {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.compare(this.order[mid], key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  upsert(key, value) {
    let row = this.rows.get(key);
    if (!row) {
      row = this.make(key, value);
      this.rows.set(key, row);
      const i = this._index(key);
      const before = i < this.order.length ? this.rows.get(this.order[i]).el : null;
      this.order.splice(i, 0, key);
      this.parent.insertBefore(row.el, before);
    }
    row.update(value);
    return row;
  }

  remove(key) {
    const row = this.rows.get(key);
    if (!row) return;
    this.rows.delete(key);
    const i = this.order.indexOf(key);
    if (i >= 0) this.order.splice(i, 1);
    row.destroy?.();
    row.el.remove();
  }

  // Applies the changed keys of `map` (present: upsert, absent: remove).
  sync(keys, map) {
    for (const key of keys) {
      const value = map.get(key);
      if (value === undefined) this.remove(key);
      else this.upsert(key, value);
    }
  }
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "testid") node.dataset.testid = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}
