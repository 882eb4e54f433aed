// dashboard.js — the operations dashboard at GET / (docs/operations.md). Everything shown comes
// over /api/live (live.js); supervisor actions are REST calls with the bearer token.
//
// Test ids (data-testid), besides those of live.js:
//   queues — the queue cards; queue-card-<queue> (data-queue) holds queue-waiting,
//     queue-longest (current longest wait), queue-sl (service level today), queue-asa,
//     queue-abandon (abandon rate today), queue-today ("offered / answered / abandoned"),
//     queue-agents (agents by state: chips queue-agents-<state>); queue-count
//   campaigns-panel, campaigns — campaign cards campaign-card-<name> (data-campaign) with
//     campaign-status, campaign-dial-level, campaign-abandon (rate vs cap, data-over="1" past the
//     cap), campaign-leads-left, campaign-agents, and buttons campaign-start|pause|stop
//   agents — the agents' tbody; rows agent-row-<agent> (data-agent, data-state) with
//     agent-state (badge, data-state), agent-since (time in state), agent-call (phase and queue),
//     agent-caller, agent-queues, agent-sip, and buttons agent-pause, agent-ready, agent-logout;
//     agent-filter (text filter), supervisor-pause-reason (the reason a pause sends),
//     agent-summary (counts by state), agent-count
//   calls — live calls' tbody; rows call-row-<call_id> (data-call, data-phase) with call-phase,
//     call-caller, call-number, call-queue, call-agent, call-wait, call-talk; on a talking call
//     call-monitor-mode (listen|whisper|barge) and call-monitor-start, call-monitor-status;
//     monitor-extension (the supervisor's extension, kept in sessionStorage); call-count
//   monitors-panel, monitors — running monitors: rows monitor-row-<monitor_id> with
//     monitor-state, monitor-mode (select: switching it POSTs /api/monitors/{id}), monitor-stop
//   chart-queue (queue filter of the charts), chart-volume, chart-sl (see charts.js)
//   ami-events — AMI rows ami-row (data-event), newest first; ami-filter-event,
//     ami-filter-channel (substring filters, case-insensitive), ami-pause (freeze), ami-count
//   role-notice — what this token may do, when it is not a supervisor/admin token

import {
  KeyedList, Live, Store, Timers, act, agentPath, api, boot, byTestId, canControl, el,
  fmtClock, fmtPct, fmtSecs, naturalOrder, session, setAttr, setText, toast,
} from "./live.js";
import { aggregate, renderServiceLevel, renderVolume } from "./charts.js";

const store = new Store();
const timers = new Timers();
let live = null;

const STATE_LABEL = {
  logged_out: "logged out", ready: "ready", paused: "paused", ringing: "ringing",
  on_call: "on call", wrapup: "wrap-up",
};
const PHASE_LABEL = { new: "new", ivr: "IVR", queued: "queued", ringing: "ringing", talking: "talking",
                      ending: "ending" };
const MODES = ["listen", "whisper", "barge"];

const remembered = (key, input, fallback = "") => {
  input.value = sessionStorage.getItem(key) ?? fallback;
  input.addEventListener("change", () => sessionStorage.setItem(key, input.value.trim()));
};

// ------------------------------------------------------------------ queues

function chip(testid, label) {
  const n = el("b", { text: "0" });
  const c = el("span", { class: "chip", testid, title: label }, n, ` ${label}`);
  c.num = n;
  return c;
}

function makeQueueCard(name) {
  const dd = (testid) => el("dd", { testid });
  const f = {
    waiting: el("span", { class: "num", testid: "queue-waiting" }),
    longest: dd("queue-longest"),
    sl: dd("queue-sl"),
    asa: dd("queue-asa"),
    abandon: dd("queue-abandon"),
    today: dd("queue-today"),
    longestToday: dd("queue-longest-today"),
  };
  const chips = Object.fromEntries(
    [["ready", "ready"], ["ringing", "ringing"], ["on_call", "on call"], ["wrapup", "wrap-up"],
     ["paused", "paused"], ["logged_in", "logged in"]].map(([k, label]) => [k, chip(`queue-agents-${k}`, label)]));
  const card = el("article", { class: "card queue", testid: `queue-card-${name}`, "data-queue": name },
    el("h3", { text: name }),
    el("div", { class: "big" }, f.waiting, el("span", { class: "unit", text: " waiting" })),
    el("dl", {},
      el("dt", { text: "longest wait" }), f.longest,
      el("dt", { text: "service level" }), f.sl,
      el("dt", { text: "ASA" }), f.asa,
      el("dt", { text: "abandoned" }), f.abandon,
      el("dt", { text: "off. / ans. / ab." }), f.today,
      el("dt", { text: "longest today" }), f.longestToday),
    el("div", { class: "chips", testid: "queue-agents" }, ...Object.values(chips)));
  return {
    el: card,
    update(q) {
      const today = q.today || {};
      const agents = q.agents || {};
      setText(f.waiting, q.waiting ?? 0);
      card.classList.toggle("alert", (q.waiting || 0) > 0 && !(agents.ready > 0));
      if (q.oldest_waiting_since) timers.set(f.longest, q.oldest_waiting_since);
      else {
        timers.delete(f.longest);
        setText(f.longest, "–");
      }
      setText(f.sl, fmtPct(today.service_level));
      setAttr(f.sl, "title", `answered within ${q.service_level_seconds ?? "?"} s`);
      f.sl.dataset.level = today.service_level == null ? "" : today.service_level >= 0.8 ? "ok"
        : today.service_level >= 0.6 ? "warn" : "bad";
      setText(f.asa, fmtSecs(today.asa_seconds));
      setText(f.abandon, fmtPct(today.abandon_rate, 1));
      setText(f.today, `${today.offered ?? 0} / ${today.answered ?? 0} / ${today.abandoned ?? 0}`);
      setText(f.longestToday, fmtSecs(today.longest_wait_seconds));
      for (const [k, c] of Object.entries(chips)) {
        setText(c.num, agents[k] ?? 0);
        c.classList.toggle("zero", !agents[k]);
      }
    },
    destroy() { timers.delete(f.longest); },
  };
}

// ------------------------------------------------------------------ campaigns

function makeCampaignCard(name) {
  const dd = (testid) => el("dd", { testid });
  const f = {
    status: el("span", { class: "badge", testid: "campaign-status" }),
    mode: el("span", { class: "mode" }),
    level: dd("campaign-dial-level"),
    abandon: dd("campaign-abandon"),
    left: dd("campaign-leads-left"),
    agents: dd("campaign-agents"),
    dialing: dd("campaign-dialing"),
  };
  const btn = (action, label) => el("button", { type: "button", testid: `campaign-${action}`,
                                                "data-action": action, text: label });
  const card = el("article", { class: "card campaign", testid: `campaign-card-${name}`, "data-campaign": name },
    el("h3", {}, `${name} `, f.status, " ", f.mode),
    el("dl", {},
      el("dt", { text: "dial level" }), f.level,
      el("dt", { text: "abandon / cap" }), f.abandon,
      el("dt", { text: "leads left" }), f.left,
      el("dt", { text: "agents ready / on call" }), f.agents,
      el("dt", { text: "dialing / ringing" }), f.dialing),
    el("div", { class: "actions control-only" }, btn("start", "Start"), btn("pause", "Pause"), btn("stop", "Stop")));
  return {
    el: card,
    update(c) {
      const lv = c.live || {};
      const status = c.status ?? c.state ?? "";
      setText(f.status, status);
      f.status.dataset.state = status;
      setText(f.mode, c.mode ?? "");
      setText(f.level, lv.dial_level == null ? "–" : Number(lv.dial_level).toFixed(2));
      const cap = lv.abandon_cap ?? c.abandon_target ?? null;
      setText(f.abandon, `${fmtPct(lv.abandon_rate, 1)} / ${fmtPct(cap, 1)}`);
      f.abandon.dataset.over = cap != null && lv.abandon_rate != null && lv.abandon_rate > cap ? "1" : "";
      setText(f.left, lv.leads_left ?? "–");
      setText(f.agents, `${lv.agents_ready ?? 0} / ${lv.agents_on_call ?? 0}`);
      setText(f.dialing, `${lv.dialing ?? 0} / ${lv.ringing ?? 0}`);
    },
  };
}

// ------------------------------------------------------------------ agents

let agentFilter = "";

function callerOf(call) {
  if (!call) return "";
  return call.direction === "outbound" ? call.dnis || "" : call.caller || "";
}

function makeAgentRow(name) {
  const c = {
    state: el("span", { class: "badge", testid: "agent-state" }),
    since: el("td", { class: "num", testid: "agent-since" }),
    call: el("td", { testid: "agent-call" }),
    caller: el("td", { testid: "agent-caller" }),
    queues: el("td", { class: "queues", testid: "agent-queues" }),
    sip: el("td", { class: "sip", testid: "agent-sip" }),
  };
  const btn = (action, label) => el("button", { type: "button", testid: `agent-${action}`,
                                                "data-action": action, text: label });
  const b = { pause: btn("pause", "Pause"), ready: btn("ready", "Ready"), logout: btn("logout", "Log out") };
  const tr = el("tr", { testid: `agent-row-${name}`, "data-agent": name },
    el("td", { class: "name", text: name }), el("td", {}, c.state), c.since, c.call, c.caller, c.queues, c.sip,
    el("td", { class: "actions control-only" }, b.pause, b.ready, b.logout));
  let haystack = name.toLowerCase();
  return {
    el: tr,
    update(a) {
      const state = a.state || "logged_out";
      setAttr(tr, "data-state", state);
      c.state.dataset.state = state;
      let label = STATE_LABEL[state] || state;
      if (state === "paused" && a.pause_reason) label += ` · ${a.pause_reason}`;
      if (a.pending) label += ` → ${a.pending}`;
      setText(c.state, label);
      timers.set(c.since, a.since ?? null);
      const call = a.call;
      setText(c.call, call ? [PHASE_LABEL[call.phase] || call.phase, call.queue || call.campaign].filter(Boolean)
        .join(" · ") : "");
      setText(c.caller, callerOf(call));
      const queues = [...(a.queues || []), ...(a.campaigns || []).map((x) => `⚑ ${x}`)].join(", ");
      setText(c.queues, queues);
      setText(c.sip, a.registered ? "●" : "○");
      setAttr(c.sip, "title", a.registered ? "SIP registered" : "not registered");
      c.sip.dataset.on = a.registered ? "1" : "";
      b.pause.disabled = state === "logged_out" || state === "paused";
      // during a call, Ready cancels a pause or logout asked for after it (`pending`)
      b.ready.disabled = !(["paused", "wrapup"].includes(state) || a.pending);
      b.logout.disabled = state === "logged_out";
      haystack = `${name} ${label} ${queues}`.toLowerCase();
      tr.hidden = !!agentFilter && !haystack.includes(agentFilter);
    },
    matches(filter) { return !filter || haystack.includes(filter); },
  };
}

function agentSummary() {
  const counts = {};
  for (const a of store.agent.values()) counts[a.state] = (counts[a.state] || 0) + 1;
  const parts = ["ready", "ringing", "on_call", "wrapup", "paused", "logged_out"]
    .filter((s) => counts[s]).map((s) => `${counts[s]} ${STATE_LABEL[s]}`);
  setText(byTestId("agent-summary"), parts.join(" · "));
  setText(byTestId("agent-count"), store.agent.size);
}

// ------------------------------------------------------------------ calls and monitors

const monitorCall = new Map(); // monitor id -> call id (kept after the monitor is gone)

function makeCallRow(id) {
  const c = {
    phase: el("span", { class: "badge", testid: "call-phase" }),
    dir: el("td", { class: "dir" }),
    caller: el("td", { testid: "call-caller" }),
    number: el("td", { testid: "call-number" }),
    queue: el("td", { testid: "call-queue" }),
    agent: el("td", { testid: "call-agent" }),
    wait: el("td", { class: "num", testid: "call-wait" }),
    talk: el("td", { class: "num", testid: "call-talk" }),
  };
  const mode = el("select", { testid: "call-monitor-mode", title: "monitor mode" },
    ...MODES.map((m) => el("option", { value: m, text: m })));
  const start = el("button", { type: "button", testid: "call-monitor-start", "data-action": "monitor",
                               text: "Monitor" });
  const status = el("span", { class: "monitor-status", testid: "call-monitor-status" });
  const supervise = el("span", { class: "supervise" }, mode, start);
  const tr = el("tr", { testid: `call-row-${id}`, "data-call": id },
    el("td", { class: "id", text: id.length > 14 ? `…${id.slice(-12)}` : id, title: id }), c.dir,
    el("td", {}, c.phase), c.caller, c.number, c.queue, c.agent, c.wait, c.talk,
    el("td", { class: "control-only" }, supervise, status));
  return {
    el: tr,
    mode,
    update(call) {
      const phase = call.phase || "new";
      setAttr(tr, "data-phase", phase);
      c.phase.dataset.phase = phase;
      setText(c.phase, PHASE_LABEL[phase] || phase);
      setText(c.dir, call.direction === "outbound" ? "out" : "in");
      setText(c.caller, call.caller);
      setText(c.number, call.dnis);
      setText(c.queue, call.queue || call.campaign || "");
      setText(c.agent, call.agent);
      if (call.queued_at) timers.set(c.wait, call.queued_at, call.answered_at ?? null);
      else timers.set(c.wait, null);
      timers.set(c.talk, call.answered_at ?? null);
      supervise.hidden = phase !== "talking";
      const mine = [...store.monitor.values()].filter((m) => m.call_id === id);
      setText(status, mine.map((m) => `${m.mode} · ${m.supervisor} (${m.state})`).join(", "));
    },
  };
}

function makeMonitorRow(id) {
  const c = {
    call: el("td"), agent: el("td"), supervisor: el("td"),
    state: el("td", { testid: "monitor-state" }),
  };
  const mode = el("select", { testid: "monitor-mode", "data-action": "mode" },
    ...MODES.map((m) => el("option", { value: m, text: m })));
  const stop = el("button", { type: "button", testid: "monitor-stop", "data-action": "stop", text: "Stop" });
  const tr = el("tr", { testid: `monitor-row-${id}`, "data-monitor": id },
    c.call, c.agent, c.supervisor, c.state, el("td", {}, mode), el("td", {}, stop));
  return {
    el: tr,
    update(m) {
      setText(c.call, m.call_id);
      setText(c.agent, m.agent);
      setText(c.supervisor, m.supervisor);
      setText(c.state, m.state);
      if (document.activeElement !== mode && m.mode) mode.value = m.mode;
    },
  };
}

// ------------------------------------------------------------------ AMI stream

const AMI_ROWS = 300;
let amiShown = 0; // seq of the newest event rendered
const amiFilter = { event: "", channel: "" };

function amiMatches(e) {
  if (amiFilter.event && !e.event.toLowerCase().includes(amiFilter.event)) return false;
  if (amiFilter.channel) {
    for (const [k, v] of Object.entries(e.fields)) {
      if (k.toLowerCase().includes("channel") && String(v).toLowerCase().includes(amiFilter.channel)) return true;
    }
    return false;
  }
  return true;
}

// The fields that tell calls apart first, then the rest in the event's order.
const AMI_FIRST = ["CallerIDNum", "ConnectedLineNum", "DestChannel", "Uniqueid", "Linkedid", "BridgeUniqueid",
                   "ChannelStateDesc", "Cause-txt"];
const AMI_SKIP = new Set(["Event", "Channel", "Privilege"]);

function amiRow(e) {
  const f = e.fields;
  const channel = f.Channel ?? f.DestChannel ?? f.Channel1 ?? "";
  const keys = [...AMI_FIRST.filter((k) => k in f), ...Object.keys(f).filter((k) => !AMI_FIRST.includes(k))];
  const rest = keys.filter((k) => !AMI_SKIP.has(k)).map((k) => `${k}=${f[k]}`).join(" ");
  return el("tr", { testid: "ami-row", "data-event": e.event },
    el("td", { class: "num", text: fmtClock(e.ts, true) }), el("td", { class: "event", text: e.event }),
    el("td", { class: "channel", text: channel }),
    el("td", { class: "fields", text: rest.length > 240 ? `${rest.slice(0, 240)}…` : rest, title: rest }));
}

function renderAmi(full = false) {
  const tbody = byTestId("ami-events");
  if (!full && byTestId("ami-pause").checked) return;
  if (full) {
    tbody.replaceChildren();
    amiShown = 0;
  }
  const fresh = [];
  for (let i = store.ami.length - 1; i >= 0 && store.ami[i].seq > amiShown && fresh.length < AMI_ROWS; i--) {
    if (amiMatches(store.ami[i])) fresh.push(store.ami[i]);
  }
  if (store.ami.length) amiShown = store.ami[store.ami.length - 1].seq;
  if (fresh.length) {
    const frag = document.createDocumentFragment();
    for (const e of fresh) frag.append(amiRow(e));
    tbody.prepend(frag);
    while (tbody.childElementCount > AMI_ROWS) tbody.lastElementChild.remove();
  }
  const skipped = store.amiSkipped ? ` · ${store.amiSkipped} skipped by the server in bursts` : "";
  setText(byTestId("ami-count"), `${tbody.childElementCount} shown of ${store.ami.length} kept${skipped}`);
}

// ------------------------------------------------------------------ charts

function renderCharts() {
  const msg = store.intervals;
  const queue = byTestId("chart-queue").value;
  const by = aggregate(msg?.rows, queue);
  const step = (msg?.minutes || 15) * 60;
  renderVolume(byTestId("chart-volume"), by, step);
  renderServiceLevel(byTestId("chart-sl"), by, step);
}

function chartQueues() {
  const select = byTestId("chart-queue");
  const names = new Set(store.queue.keys());
  for (const r of store.intervals?.rows || []) names.add(r.queue);
  const have = new Set([...select.options].map((o) => o.value));
  const missing = [...names].filter((n) => !have.has(n));
  if (!missing.length) return;
  const current = select.value;
  const sorted = [...names].sort(naturalOrder);
  select.replaceChildren(el("option", { value: "", text: "all queues" }),
    ...sorted.map((n) => el("option", { value: n, text: n })));
  select.value = current;
}

// ------------------------------------------------------------------ wiring

const views = {};

function render(d) {
  if (d.queue.size) {
    views.queues.sync(d.queue, store.queue);
    setText(byTestId("queue-count"), store.queue.size);
  }
  if (d.campaign.size) {
    views.campaigns.sync(d.campaign, store.campaign);
    byTestId("campaigns-panel").hidden = views.campaigns.size === 0;
  }
  if (d.agent.size) {
    views.agents.sync(d.agent, store.agent);
    agentSummary();
  }
  for (const id of d.monitor) {
    const m = store.monitor.get(id);
    if (m?.call_id) monitorCall.set(id, m.call_id);
    const callId = monitorCall.get(id);
    if (callId) d.call.add(callId);
  }
  if (d.call.size) {
    views.calls.sync(d.call, store.call);
    setText(byTestId("call-count"), store.call.size);
  }
  if (d.monitor.size) {
    views.monitors.sync(d.monitor, store.monitor);
    byTestId("monitors-panel").hidden = views.monitors.size === 0;
  }
  if (d.ami) renderAmi();
  if (d.queue.size || d.intervals) chartQueues();
  if (d.intervals) renderCharts();
}

function wire() {
  views.queues = new KeyedList(byTestId("queues"), { make: makeQueueCard });
  views.campaigns = new KeyedList(byTestId("campaigns"), { make: makeCampaignCard });
  views.agents = new KeyedList(byTestId("agents"), { make: makeAgentRow });
  const callOrder = (a, b) => {
    const ca = store.call.get(a)?.started_at ?? 0;
    const cb = store.call.get(b)?.started_at ?? 0;
    return ca - cb || naturalOrder(a, b);
  };
  views.calls = new KeyedList(byTestId("calls"), { make: makeCallRow, compare: callOrder });
  views.monitors = new KeyedList(byTestId("monitors"), { make: makeMonitorRow });

  const reason = byTestId("supervisor-pause-reason");
  remembered("cc.pauseReason", reason, "supervisor");
  const extension = byTestId("monitor-extension");
  remembered("cc.monitorExtension", extension, "");

  byTestId("agents").addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-action]");
    if (!button) return;
    const agent = button.closest("tr").dataset.agent;
    const action = button.dataset.action;
    const body = action === "pause" ? { reason: reason.value.trim() || "supervisor" } : undefined;
    act(button, `${action} ${agent}`, () => api("POST", agentPath(agent, action), body), () => {
      store.touch("agent", agent);
      live.changed();
    });
  });

  byTestId("campaigns").addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-action]");
    if (!button) return;
    const name = button.closest("[data-campaign]").dataset.campaign;
    const action = button.dataset.action;
    act(button, `${action} ${name}`, () => api("POST", `/api/campaigns/${encodeURIComponent(name)}/${action}`));
  });

  byTestId("calls").addEventListener("click", async (ev) => {
    const button = ev.target.closest("button[data-action=monitor]");
    if (!button) return;
    const callId = button.closest("tr").dataset.call;
    const ext = extension.value.trim();
    if (!ext) {
      toast("Enter your extension (e.g. agent20) before monitoring a call.");
      extension.focus();
      return;
    }
    sessionStorage.setItem("cc.monitorExtension", ext);
    const mode = views.calls.rows.get(callId).mode.value;
    const res = await act(button, `monitor ${callId}`, () => api("POST",
      `/api/calls/${encodeURIComponent(callId)}/monitor`, { supervisor: ext, mode }));
    if (res?.monitor_id && !store.monitor.has(res.monitor_id)) {
      store.apply({ type: "monitor", call_id: callId, supervisor: ext, mode, state: "ringing",
                    agent: store.call.get(callId)?.agent ?? null, ...res });
      live.changed();
    }
  });

  const monitors = byTestId("monitors");
  monitors.addEventListener("change", (ev) => {
    const select = ev.target.closest("select[data-action=mode]");
    if (!select) return;
    const id = select.closest("tr").dataset.monitor;
    const before = store.monitor.get(id)?.mode;
    act(select, `switch monitor ${id}`, async () => {
      try {
        const res = await api("POST", `/api/monitors/${encodeURIComponent(id)}`, { mode: select.value });
        store.apply({ type: "monitor", monitor_id: id, mode: select.value, ...(res || {}) });
        live.changed();
      } catch (exc) {
        if (before) select.value = before;
        throw exc;
      }
    });
  });
  monitors.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-action=stop]");
    if (!button) return;
    const id = button.closest("tr").dataset.monitor;
    act(button, `stop monitor ${id}`, async () => {
      await api("DELETE", `/api/monitors/${encodeURIComponent(id)}`);
      store.apply({ type: "monitor", monitor_id: id, state: "ended" });
      live.changed();
    });
  });

  byTestId("agent-filter").addEventListener("input", (ev) => {
    agentFilter = ev.target.value.trim().toLowerCase();
    for (const row of views.agents.rows.values()) row.el.hidden = !row.matches(agentFilter);
  });

  let amiDebounce = 0;
  const onAmiFilter = () => {
    clearTimeout(amiDebounce);
    amiDebounce = setTimeout(() => {
      amiFilter.event = byTestId("ami-filter-event").value.trim().toLowerCase();
      amiFilter.channel = byTestId("ami-filter-channel").value.trim().toLowerCase();
      renderAmi(true);
    }, 120);
  };
  byTestId("ami-filter-event").addEventListener("input", onAmiFilter);
  byTestId("ami-filter-channel").addEventListener("input", onAmiFilter);
  byTestId("ami-pause").addEventListener("change", (ev) => { if (!ev.target.checked) renderAmi(); });

  byTestId("chart-queue").addEventListener("change", renderCharts);
  let chartWidth = 0;
  new ResizeObserver((entries) => {
    const width = Math.round(entries[0].contentRect.width);
    if (width && Math.abs(width - chartWidth) > 8) {
      chartWidth = width;
      requestAnimationFrame(renderCharts);
    }
  }).observe(byTestId("chart-volume"));
  // The charts' time axis moves with the clock: redrawn each minute (local, no request).
  setInterval(() => { if (store.intervals) renderCharts(); }, 60000);
  renderCharts();
}

function start() {
  const notice = byTestId("role-notice");
  if (session.agent) {
    notice.hidden = false;
    notice.replaceChildren(`This token is bound to ${session.agent}: it shows that agent only. `,
      el("a", { href: "/agent", text: "Open the agent desktop" }), ".");
  } else if (!canControl()) {
    notice.hidden = false;
    notice.textContent = "Read-only token: supervisor actions are hidden.";
  }
  wire();
  live = new Live({
    store,
    render,
    minFrameMs: 100, // 200 agents: ≤ 10 renders a second, each change still shown within ~0.15 s
    onRefused: (why) => toast(`Live updates refused: ${why}. Sign out and sign in again.`, { timeout: 60000 }),
  });
  live.start();
}

boot({ accept: () => null, start });
