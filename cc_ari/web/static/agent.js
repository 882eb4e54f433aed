// agent.js — the agent desktop at GET /agent (docs/operations.md). Signed in with a token bound
// to one agent (token:agent:<name>); /api/live then carries that agent and its own calls only.
//
// Test ids (data-testid), besides those of live.js:
//   agent-name, agent-state (badge, data-state), agent-timer (time in state), agent-reason (pause
//     reason), agent-pending (what applies after the call), agent-queues, agent-registered
//   btn-ready, btn-pause, pause-reason (select; "other" shows pause-reason-text), btn-logout
//   login-form, login-queues, login-campaigns, btn-login — shown while logged out
//   screen-pop (data-call, data-direction, data-phase) — the offered / connected call, kept
//     after it ends while its disposition is pending: pop-title, pop-phase, pop-timer,
//     pop-caller (inbound: the caller; outbound: the customer's number), pop-dnis, pop-ivr-path,
//     pop-queue, pop-campaign, pop-lead (table of the lead's fields: rows data-field="<name>"),
//     btn-hangup (while the call is connected)
//   disposition (data-call) — disposition-form, disposition-code (the codes of the message),
//     disposition-callback (shown for "callback" on an outbound call) with disposition-callback-at
//     (datetime-local, sent as callback_at, ISO 8601 with the browser's UTC offset),
//     disposition-submit

import {
  Live, Store, Timers, act, agentPath, api, boot, byTestId, clock, el, session, setAttr, setText, toast,
} from "./live.js";

const store = new Store();
const timers = new Timers();
let live = null;
let me = "";
let lastCall = null; // the call on screen; kept after it ends while its disposition is pending
let lastCallEnded = null; // when it left the agent (epoch s)
let dispositionFor = null; // call id the form's codes are for
let dispositionDirection = "inbound";
let submittedFor = null; // call id whose disposition was accepted
let leadShown = "";

const STATE_LABEL = {
  logged_out: "logged out", ready: "ready", paused: "paused", ringing: "ringing",
  on_call: "on call", wrapup: "wrap-up",
};
const PENDING_LABEL = { pause: "pause after this call", paused: "pause after this call",
                        logout: "log out after this call", logged_out: "log out after this call" };

const t = (id) => byTestId(id);

function listOf(text) {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

function isoWithOffset(local) {
  const d = new Date(local);
  if (Number.isNaN(d.getTime())) return null;
  const pad = (n) => String(n).padStart(2, "0");
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const abs = Math.abs(off);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:`
    + `${pad(d.getMinutes())}:${pad(d.getSeconds())}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

function localInputValue(epochMs) {
  const d = new Date(epochMs);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function ivrText(path) {
  if (path == null || path === "") return "—";
  if (Array.isArray(path)) return path.length ? path.join(" › ") : "—";
  return String(path);
}

// ------------------------------------------------------------------ state and actions

function renderState(a) {
  const state = a?.state || "logged_out";
  const badge = t("agent-state");
  badge.dataset.state = state;
  setText(badge, STATE_LABEL[state] || state);
  timers.set(t("agent-timer"), a?.since ?? null);
  setText(t("agent-reason"), state === "paused" && a?.pause_reason ? a.pause_reason : "");
  const pending = t("agent-pending");
  pending.hidden = !a?.pending;
  setText(pending, a?.pending ? PENDING_LABEL[a.pending] || `then: ${a.pending}` : "");
  const queues = a?.queues || [];
  const campaigns = a?.campaigns || [];
  setText(t("agent-queues"), [queues.length ? `queues: ${queues.join(", ")}` : "",
    campaigns.length ? `campaigns: ${campaigns.join(", ")}` : ""].filter(Boolean).join(" · "));
  if (queues.length || campaigns.length) {
    sessionStorage.setItem("cc.loginQueues", queues.join(", "));
    sessionStorage.setItem("cc.loginCampaigns", campaigns.join(", "));
  }
  const reg = t("agent-registered");
  setText(reg, a?.registered ? "phone registered" : "phone not registered");
  reg.dataset.on = a?.registered ? "1" : "";
  // during a call, Ready cancels a pause or logout asked for after it (`pending`)
  t("btn-ready").disabled = !(["paused", "wrapup"].includes(state) || a?.pending);
  t("btn-pause").disabled = state === "logged_out" || state === "paused";
  t("btn-logout").disabled = state === "logged_out";
  const login = t("login-form");
  if (login.hidden !== (state !== "logged_out")) {
    login.hidden = state !== "logged_out";
    if (!login.hidden) {
      t("login-queues").value ||= sessionStorage.getItem("cc.loginQueues") || "";
      t("login-campaigns").value ||= sessionStorage.getItem("cc.loginCampaigns") || "";
    }
  }
  document.title = state === "ringing" ? `☎ ${me} · ringing` : `${me} · ${STATE_LABEL[state] || state}`;
}

// ------------------------------------------------------------------ screen pop

function renderPop(a) {
  const pop = t("screen-pop");
  const dp = a?.disposition_pending || null;
  if (a?.call) {
    if (lastCall?.call_id !== a.call.call_id) lastCallEnded = null;
    lastCall = a.call;
  } else if (lastCall && lastCallEnded == null) {
    lastCallEnded = clock.now();
  }
  const keep = lastCall && (a?.call || (dp && dp.call_id === lastCall.call_id && submittedFor !== dp.call_id)
    || (!dp && a?.state === "wrapup"));
  if (!keep) {
    pop.hidden = true;
    timers.set(t("pop-timer"), null);
    lastCall = null;
    return;
  }
  const call = lastCall;
  const ended = !a?.call;
  const outbound = call.direction === "outbound";
  pop.hidden = false;
  setAttr(pop, "data-call", call.call_id);
  setAttr(pop, "data-direction", call.direction || "inbound");
  const phase = ended ? "ended" : call.phase || "ringing";
  setAttr(pop, "data-phase", phase);
  setText(t("pop-title"), outbound ? `Outbound call${call.campaign ? ` · ${call.campaign}` : ""}`
    : `Inbound call${call.queue ? ` · ${call.queue}` : ""}`);
  const badge = t("pop-phase");
  badge.dataset.phase = phase;
  setText(badge, phase);
  const since = call.answered_at ?? call.started_at ?? null;
  timers.set(t("pop-timer"), since, ended ? lastCallEnded : null);
  setText(pop.querySelector("[data-label=caller]"), outbound ? "Customer" : "Caller");
  setText(pop.querySelector("[data-label=dnis]"), outbound ? "Caller ID" : "Number dialled");
  setText(t("pop-caller"), (outbound ? call.dnis : call.caller) || "unknown");
  setText(t("pop-dnis"), (outbound ? call.caller : call.dnis) || "");
  for (const node of pop.querySelectorAll("[data-inbound]")) node.hidden = outbound;
  for (const node of pop.querySelectorAll("[data-outbound]")) node.hidden = !outbound;
  setText(t("pop-ivr-path"), ivrText(call.ivr_path));
  setText(t("pop-queue"), call.queue || "—");
  setText(t("pop-campaign"), call.campaign || "—");
  const lead = call.lead && typeof call.lead === "object" ? call.lead : null;
  const leadKey = lead ? `${call.call_id}:${JSON.stringify(lead)}` : "";
  const table = t("pop-lead");
  if (leadKey !== leadShown) {
    leadShown = leadKey;
    table.tBodies[0].replaceChildren(...Object.entries(lead || {}).map(([k, v]) =>
      el("tr", { "data-field": k }, el("th", { text: k }),
         el("td", { text: v == null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v) }))));
  }
  table.hidden = !lead;
  t("btn-hangup").hidden = ended || !(call.phase === "talking" || a?.state === "on_call");
}

// ------------------------------------------------------------------ disposition

function renderDisposition(a) {
  const section = t("disposition");
  const dp = a?.disposition_pending || null;
  if (!dp || submittedFor === dp.call_id) {
    section.hidden = true;
    if (!dp) submittedFor = null;
    return;
  }
  section.hidden = false;
  setAttr(section, "data-call", dp.call_id);
  if (dispositionFor !== dp.call_id) {
    dispositionFor = dp.call_id;
    dispositionDirection = dp.direction || lastCall?.direction || "inbound";
    const select = t("disposition-code");
    const codes = (dp.codes || []).map((c) => (typeof c === "object" && c ? [c.code, c.label || c.code] : [c, c]));
    select.replaceChildren(el("option", { value: "", text: "choose…", disabled: true, selected: true }),
      ...codes.map(([value, label]) => el("option", { value, text: label })));
    select.value = "";
    t("disposition-callback").hidden = true;
    const at = t("disposition-callback-at");
    at.value = localInputValue(Date.now() + 3600 * 1000);
    at.min = localInputValue(Date.now());
  }
}

// ------------------------------------------------------------------ wiring

function render(d) {
  if (!d.agent.size && !d.hello && !d.synced) return;
  const a = store.agent.get(me);
  renderState(a);
  renderPop(a);
  renderDisposition(a);
}

// Re-render from the store (after an action: its button's state comes from the agent's).
function refresh() {
  store.touch("agent", me);
  live.changed();
}

function wire() {
  setText(t("agent-name"), me);
  const reason = t("pause-reason");
  const reasonText = t("pause-reason-text");
  reason.addEventListener("change", () => {
    reasonText.hidden = reason.value !== "other";
    if (!reasonText.hidden) reasonText.focus();
  });

  t("btn-ready").addEventListener("click", (ev) =>
    act(ev.currentTarget, "Ready", () => api("POST", agentPath(me, "ready")), refresh));
  t("btn-pause").addEventListener("click", (ev) => {
    const why = reason.value === "other" ? reasonText.value.trim() : reason.value;
    if (!why) {
      toast("Pause: give a reason.");
      reasonText.focus();
      return;
    }
    act(ev.currentTarget, "Pause", () => api("POST", agentPath(me, "pause"), { reason: why }), refresh);
  });
  t("btn-logout").addEventListener("click", (ev) =>
    act(ev.currentTarget, "Log out", () => api("POST", agentPath(me, "logout")), refresh));
  t("btn-hangup").addEventListener("click", (ev) =>
    act(ev.currentTarget, "Hang up", () => api("POST", agentPath(me, "hangup")), refresh));

  t("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const queues = listOf(t("login-queues").value);
    const campaigns = listOf(t("login-campaigns").value);
    if (!queues.length && !campaigns.length) {
      toast("Log in: name at least one queue or campaign.");
      return;
    }
    const body = { queues };
    if (campaigns.length) body.campaigns = campaigns;
    act(t("btn-login"), "Log in", () => api("POST", agentPath(me, "login"), body), refresh);
  });

  const code = t("disposition-code");
  // A callback time goes with an outbound call only (the lead is called back).
  code.addEventListener("change", () => {
    t("disposition-callback").hidden = code.value !== "callback" || dispositionDirection !== "outbound";
  });
  t("disposition-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const callId = dispositionFor;
    if (!code.value) {
      toast("Disposition: choose an outcome.");
      return;
    }
    const body = { code: code.value };
    if (code.value === "callback" && dispositionDirection === "outbound") {
      const at = isoWithOffset(t("disposition-callback-at").value);
      if (!at) {
        toast("Disposition: a callback needs a date and time.");
        return;
      }
      body.callback_at = at;
    }
    const res = await act(t("disposition-submit"), "Disposition",
      () => api("POST", agentPath(me, "disposition"), body));
    if (res !== undefined) {
      submittedFor = callId;
      store.touch("agent", me);
      live.changed();
    }
  });
}

function start() {
  me = session.agent;
  wire();
  live = new Live({
    store,
    render,
    onRefused: (why) => toast(`Live updates refused: ${why}. Sign out and sign in again.`, { timeout: 60000 }),
  });
  live.start();
}

boot({
  accept: (who) => (who.agent ? null
    : "This page needs a token bound to an agent (token:agent:<name>); supervisors work from the dashboard at /."),
  start,
});
