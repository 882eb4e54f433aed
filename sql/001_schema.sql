-- cc_ari core tables. Written only by cc_ari/db/store.py; read through the report views.
CREATE SCHEMA IF NOT EXISTS cc;

CREATE TABLE cc.calls (
    call_id         text PRIMARY KEY,            -- the caller channel's Asterisk uniqueid (= linkedid)
    direction       text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    caller          text,
    dnis            text,
    queue           text,
    agent           text,
    ivr_path        text,
    started_at      timestamptz NOT NULL,
    queued_at       timestamptz,
    answered_at     timestamptz,
    ended_at        timestamptz,
    outcome         text CHECK (outcome IN ('answered', 'abandoned', 'voicemail', 'callback',
                        'invalid_number', 'no_answer', 'busy', 'failed', 'machine', 'dropped')),
    recording_path  text,
    handled_by      text NOT NULL DEFAULT 'cc_ari' CHECK (handled_by IN ('cc_ari', 'fallback')),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX calls_started_at ON cc.calls (started_at);
CREATE INDEX calls_open ON cc.calls (call_id) WHERE ended_at IS NULL;

CREATE TABLE cc.legs (
    leg_id       text PRIMARY KEY,                -- the channel's Asterisk uniqueid
    call_id      text NOT NULL REFERENCES cc.calls (call_id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('caller', 'agent', 'customer', 'transfer', 'supervisor')),
    endpoint     text,
    channel_name text,
    started_at   timestamptz NOT NULL,
    answered_at  timestamptz,
    ended_at     timestamptz,
    hangup_cause integer,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX legs_call_id ON cc.legs (call_id);

-- Agent state changes (login, pause with reason, ...): an audit trail and the base of
-- occupancy reports. `at` is when it happened, not when it was written.
CREATE TABLE cc.agent_events (
    id      bigserial PRIMARY KEY,
    event_key text UNIQUE,                      -- idempotency key: a replayed write never duplicates
    agent   text NOT NULL,
    state   text NOT NULL,
    reason  text,
    queues  text[] NOT NULL DEFAULT '{}',
    call_id text,
    at      timestamptz NOT NULL
);
CREATE INDEX agent_events_agent_at ON cc.agent_events (agent, at);

-- The last known state of each agent, so a restart of cc_ari keeps who is logged in.
CREATE TABLE cc.agents (
    agent        text PRIMARY KEY,
    state        text NOT NULL,
    queues       text[] NOT NULL DEFAULT '{}',
    skills       jsonb NOT NULL DEFAULT '{}',
    pause_reason text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- How far the CEL log has been reconciled (calls served by the fallback dialplan).
CREATE TABLE cc.cel_cursor (
    source   text PRIMARY KEY,
    inode    bigint NOT NULL,
    offset_bytes bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
