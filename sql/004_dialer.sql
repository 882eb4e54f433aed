-- The dialer (issue #7): outbound call columns, the lead being dialed, agents serving
-- campaigns, persistent agent sessions.

ALTER TABLE cc.calls
    ADD COLUMN campaign        text,
    ADD COLUMN lead_id         text,
    ADD COLUMN amd_result      text CHECK (amd_result IN ('HUMAN', 'MACHINE', 'NOTSURE', 'HANGUP')),
    ADD COLUMN amd_seconds     numeric(10, 3),   -- customer's answer -> AMD's decision
    ADD COLUMN connect_seconds numeric(10, 3);   -- customer's answer -> bridged to an agent
CREATE INDEX calls_campaign ON cc.calls (campaign, started_at) WHERE campaign IS NOT NULL;

-- The call a lead is being dialed on (NULL when none): its outcome is applied only by that call,
-- so a replayed or late write never touches a later attempt. While it is set the lead is
-- `scheduled` with next_attempt_at = the claim's lease (a dialer that died gives it back then).
ALTER TABLE cc.leads ADD COLUMN dialing_call_id text;

ALTER TABLE cc.agents ADD COLUMN campaigns text[] NOT NULL DEFAULT '{}';
ALTER TABLE cc.agent_events ADD COLUMN campaigns text[] NOT NULL DEFAULT '{}';

CREATE TABLE cc.agent_sessions (
    leg_id      text PRIMARY KEY,                -- the session channel's id
    agent       text NOT NULL,
    started_at  timestamptz NOT NULL,
    answered_at timestamptz,
    ended_at    timestamptz,
    end_reason  text,                            -- logout | session_lost | no_answer | unreachable | shutdown
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_sessions_agent ON cc.agent_sessions (agent, started_at);

CREATE OR REPLACE VIEW report.calls AS
SELECT
    c.call_id,
    c.direction,
    c.caller,
    c.dnis,
    c.queue,
    c.agent,
    c.started_at,
    c.queued_at,
    c.answered_at,
    c.ended_at,
    CASE WHEN c.queued_at IS NULL THEN NULL
         ELSE round(extract(epoch FROM (coalesce(c.answered_at, c.ended_at) - c.queued_at))::numeric, 3)
    END AS wait_seconds,
    CASE WHEN c.answered_at IS NULL OR c.ended_at IS NULL THEN NULL
         ELSE round(extract(epoch FROM (c.ended_at - c.answered_at))::numeric, 3)
    END AS talk_seconds,
    CASE WHEN c.answered_at IS NULL THEN NULL
         ELSE round(extract(epoch FROM (c.answered_at - c.started_at))::numeric, 3)
    END AS answer_seconds,
    CASE WHEN c.ended_at IS NULL THEN NULL
         ELSE round(extract(epoch FROM (c.ended_at - c.started_at))::numeric, 3)
    END AS trunk_seconds,
    c.outcome,
    c.recording_path,
    c.ivr_path,
    c.handled_by,
    c.campaign,
    c.lead_id,
    c.amd_result,
    c.amd_seconds,
    c.connect_seconds
FROM cc.calls c;

CREATE OR REPLACE VIEW report.agent_sessions AS
SELECT agent, leg_id, started_at, answered_at, ended_at, end_reason FROM cc.agent_sessions;
