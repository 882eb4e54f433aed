-- Supervision (listen / whisper / barge): one row per session in cc.monitoring, one row per
-- stretch of one mode in cc.monitoring_segments; report.monitoring is the segments with who
-- supervised whom: supervisor, agent, call_id, mode, started_at ("from"), ended_at ("to").
-- Written only by cc_ari/supervision/records.py through CallStore's journal.

CREATE TABLE cc.monitoring (
    monitor_id  text PRIMARY KEY,
    call_id     text NOT NULL,                   -- the monitored call (cc.calls; not a foreign key:
                                                 -- journaled writes may land in any table order)
    supervisor  text NOT NULL,                   -- the supervisor's extension (PJSIP/<supervisor>)
    agent       text NOT NULL,                   -- the agent on the call
    mode        text NOT NULL CHECK (mode IN ('listen', 'whisper', 'barge')),  -- asked at start, then the latest
    started_at  timestamptz NOT NULL,            -- the supervisor's phone began to ring
    answered_at timestamptz,                     -- the supervisor answered (NULL: never connected)
    ended_at    timestamptz,
    end_reason  text,                            -- stopped | call_ended | supervisor_hangup | no_answer |
                                                 -- unreachable | shutdown | restart | error
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX monitoring_call ON cc.monitoring (call_id);
CREATE INDEX monitoring_supervisor ON cc.monitoring (supervisor, started_at);
CREATE INDEX monitoring_open ON cc.monitoring (monitor_id) WHERE ended_at IS NULL;

CREATE TABLE cc.monitoring_segments (
    segment_id  text PRIMARY KEY,                -- <monitor_id>/<segment>
    monitor_id  text NOT NULL,
    segment     integer NOT NULL CHECK (segment >= 1),  -- 1 from the answer, +1 at each mode change
    mode        text NOT NULL CHECK (mode IN ('listen', 'whisper', 'barge')),
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,                     -- NULL while it goes on
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (monitor_id, segment)
);

CREATE VIEW report.monitoring AS
SELECT
    m.supervisor,
    m.agent,
    m.call_id,
    s.mode,
    s.started_at,
    s.ended_at,
    m.monitor_id,
    s.segment,
    CASE WHEN s.ended_at IS NULL THEN NULL
         ELSE round(extract(epoch FROM (s.ended_at - s.started_at))::numeric, 3)
    END AS seconds,
    m.end_reason
FROM cc.monitoring_segments s
JOIN cc.monitoring m USING (monitor_id);

-- Every session, connected or not (a supervisor who did not answer has no segment).
CREATE VIEW report.monitoring_sessions AS
SELECT monitor_id, call_id, supervisor, agent, mode, started_at, answered_at, ended_at, end_reason
FROM cc.monitoring;
