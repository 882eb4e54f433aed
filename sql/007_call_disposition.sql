-- #8: the agent's disposition of an inbound call (outbound ones go to the lead: cc.leads.disposition).
ALTER TABLE cc.calls ADD COLUMN IF NOT EXISTS disposition text;

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
    c.connect_seconds,
    c.disposition
FROM cc.calls c;
