-- Reporting views: what ops and outside programs query (LAB.md).
CREATE SCHEMA IF NOT EXISTS report;

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
    -- time in queue: until answered, or until the caller left
    CASE WHEN c.queued_at IS NULL THEN NULL
         ELSE round(extract(epoch FROM (coalesce(c.answered_at, c.ended_at) - c.queued_at))::numeric, 3)
    END AS wait_seconds,
    CASE WHEN c.answered_at IS NULL OR c.ended_at IS NULL THEN NULL
         ELSE round(extract(epoch FROM (c.ended_at - c.answered_at))::numeric, 3)
    END AS talk_seconds,
    -- answer time: ring until answered (the caller's wait, IVR included)
    CASE WHEN c.answered_at IS NULL THEN NULL
         ELSE round(extract(epoch FROM (c.answered_at - c.started_at))::numeric, 3)
    END AS answer_seconds,
    -- trunk time: ring until the end of talk (the line resource)
    CASE WHEN c.ended_at IS NULL THEN NULL
         ELSE round(extract(epoch FROM (c.ended_at - c.started_at))::numeric, 3)
    END AS trunk_seconds,
    c.outcome,
    c.recording_path,
    c.ivr_path,
    c.handled_by
FROM cc.calls c;

CREATE OR REPLACE VIEW report.legs AS
SELECT
    l.call_id,
    l.leg_id,
    l.role,
    l.endpoint,
    l.channel_name,
    l.started_at,
    l.answered_at,
    l.ended_at,
    l.hangup_cause
FROM cc.legs l;

CREATE OR REPLACE VIEW report.agent_events AS
SELECT agent, state, reason, queues, call_id, at FROM cc.agent_events;
