-- #8 (operations): per-queue settings and the interval KPI views (docs/kpi.md defines every column).
--
-- The views read cc.calls and cc.agent_events directly (the same columns and the same wait / talk
-- arithmetic as report.calls), so they never depend on report.calls being redefined.
--
-- Intervals are aligned to UTC quarter hours (origin 2000-01-01 00:00 UTC); they are the local
-- quarter hours of every time zone (all offsets are whole quarter hours). The views are driven by a
-- grid of interval starts (generate_series from the first data to now()): a WHERE on interval_start
-- filters that grid first, and only the intervals kept read calls and events, through indexes.

CREATE TABLE cc.queue_settings (
    queue                 text PRIMARY KEY,
    service_level_seconds integer NOT NULL DEFAULT 20 CHECK (service_level_seconds >= 0),
    short_abandon_seconds integer NOT NULL DEFAULT 5 CHECK (short_abandon_seconds >= 0)
);

-- Queue calls by queue and time they entered the queue (per-interval reads, the list of queues).
CREATE INDEX calls_queue_queued_at ON cc.calls (queue, queued_at) WHERE queued_at IS NOT NULL;
-- A call's wrap-up (the agent's `wrapup` event carrying its call_id).
CREATE INDEX agent_events_call_id ON cc.agent_events (call_id) WHERE call_id IS NOT NULL;

CREATE OR REPLACE VIEW report.queue_intervals AS
WITH RECURSIVE queues (queue) AS (
    -- every queue that ever had a call (a loose index scan of calls_queue_queued_at)
    SELECT (SELECT min(c.queue) FROM cc.calls c WHERE c.queued_at IS NOT NULL)
    UNION ALL
    SELECT (SELECT min(c.queue) FROM cc.calls c WHERE c.queued_at IS NOT NULL AND c.queue > q.queue)
      FROM queues q WHERE q.queue IS NOT NULL
), grid AS (
    SELECT g.interval_start
      FROM generate_series(
               date_bin('15 minutes',
                        (SELECT min(f.first_at) FROM queues q
                            CROSS JOIN LATERAL (SELECT min(c.queued_at) AS first_at FROM cc.calls c
                                                 WHERE c.queue = q.queue AND c.queued_at IS NOT NULL) f),
                        TIMESTAMPTZ '2000-01-01 00:00:00+00'),
               now(), INTERVAL '15 minutes') AS g (interval_start)
)
SELECT
    q.queue,
    g.interval_start,
    x.service_level_seconds,
    x.short_abandon_seconds,
    x.offered,
    x.answered,
    x.abandoned,
    x.short_abandoned,
    x.timed_out,
    x.answered_within_sl,
    x.offered - x.short_abandoned AS sl_base,
    CASE WHEN x.offered - x.short_abandoned > 0
         THEN x.answered_within_sl::float8 / (x.offered - x.short_abandoned) END AS service_level,
    x.wait_seconds_answered,
    CASE WHEN x.answered > 0 THEN round(x.wait_seconds_answered / x.answered, 3) END AS asa_seconds,
    x.handled,
    x.handle_seconds,
    CASE WHEN x.handled > 0 THEN round(x.handle_seconds / x.handled, 3) END AS aht_seconds,
    x.longest_wait_seconds
FROM grid g
CROSS JOIN queues q
LEFT JOIN cc.queue_settings s ON s.queue = q.queue
CROSS JOIN LATERAL (
    SELECT
        coalesce(s.service_level_seconds, 20) AS service_level_seconds,
        coalesce(s.short_abandon_seconds, 5) AS short_abandon_seconds,
        count(*)::integer AS offered,
        count(*) FILTER (WHERE c.answered)::integer AS answered,
        count(*) FILTER (WHERE c.abandoned)::integer AS abandoned,
        count(*) FILTER (WHERE c.abandoned AND c.wait_seconds < coalesce(s.short_abandon_seconds, 5))::integer
            AS short_abandoned,
        count(*) FILTER (WHERE NOT c.answered AND NOT c.abandoned)::integer AS timed_out,
        count(*) FILTER (WHERE c.answered AND c.wait_seconds <= coalesce(s.service_level_seconds, 20))::integer
            AS answered_within_sl,
        coalesce(sum(c.wait_seconds) FILTER (WHERE c.answered), 0) AS wait_seconds_answered,
        count(*) FILTER (WHERE c.handled)::integer AS handled,
        coalesce(sum(c.talk_seconds + c.wrapup_seconds) FILTER (WHERE c.handled), 0) AS handle_seconds,
        max(c.wait_seconds) AS longest_wait_seconds
    FROM (
        SELECT
            c.call_id,
            c.agent,
            c.answered_at IS NOT NULL AS answered,
            c.answered_at IS NULL AND c.outcome = 'abandoned' AS abandoned,
            c.answered_at IS NOT NULL AND c.ended_at IS NOT NULL AS handled,
            round(extract(epoch FROM (coalesce(c.answered_at, c.ended_at) - c.queued_at))::numeric, 3)
                AS wait_seconds,
            round(extract(epoch FROM (c.ended_at - c.answered_at))::numeric, 3) AS talk_seconds,
            coalesce(w.wrapup_seconds, 0) AS wrapup_seconds
        FROM cc.calls c
        -- the call's wrap-up: from its agent's `wrapup` event for this call until that agent's
        -- next event in another state (now() while it lasts)
        LEFT JOIN LATERAL (
            SELECT round(extract(epoch FROM (coalesce(
                       (SELECT min(n.at) FROM cc.agent_events n
                         WHERE n.agent = e.agent AND n.at >= e.at AND (n.at > e.at OR n.id > e.id)
                           AND n.state <> 'wrapup'),
                       greatest(now(), e.at)) - e.at))::numeric, 3) AS wrapup_seconds
              FROM cc.agent_events e
             WHERE c.answered_at IS NOT NULL AND c.ended_at IS NOT NULL
               AND e.call_id = c.call_id AND e.agent = c.agent AND e.state = 'wrapup'
             ORDER BY e.at, e.id
             LIMIT 1
        ) w ON true
        WHERE c.queue = q.queue
          AND c.queued_at >= g.interval_start AND c.queued_at < g.interval_start + INTERVAL '15 minutes'
          AND c.direction = 'inbound'
          AND (c.answered_at IS NOT NULL OR c.ended_at IS NOT NULL)
    ) c
) x
WHERE q.queue IS NOT NULL AND x.offered > 0;

CREATE OR REPLACE VIEW report.queue_intervals_30m AS
SELECT
    queue,
    interval_start,
    service_level_seconds,
    short_abandon_seconds,
    offered,
    answered,
    abandoned,
    short_abandoned,
    timed_out,
    answered_within_sl,
    offered - short_abandoned AS sl_base,
    CASE WHEN offered - short_abandoned > 0 THEN answered_within_sl::float8 / (offered - short_abandoned) END
        AS service_level,
    wait_seconds_answered,
    CASE WHEN answered > 0 THEN round(wait_seconds_answered / answered, 3) END AS asa_seconds,
    handled,
    handle_seconds,
    CASE WHEN handled > 0 THEN round(handle_seconds / handled, 3) END AS aht_seconds,
    longest_wait_seconds
FROM (
    SELECT
        queue,
        date_bin('30 minutes', interval_start, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS interval_start,
        max(service_level_seconds) AS service_level_seconds,
        max(short_abandon_seconds) AS short_abandon_seconds,
        sum(offered)::integer AS offered,
        sum(answered)::integer AS answered,
        sum(abandoned)::integer AS abandoned,
        sum(short_abandoned)::integer AS short_abandoned,
        sum(timed_out)::integer AS timed_out,
        sum(answered_within_sl)::integer AS answered_within_sl,
        sum(wait_seconds_answered) AS wait_seconds_answered,
        sum(handled)::integer AS handled,
        sum(handle_seconds) AS handle_seconds,
        max(longest_wait_seconds) AS longest_wait_seconds
    FROM report.queue_intervals
    GROUP BY 1, 2
) h;

CREATE OR REPLACE VIEW report.agent_intervals AS
WITH RECURSIVE agents (agent) AS (
    -- every agent with an event (a loose index scan of agent_events_agent_at)
    SELECT (SELECT min(e.agent) FROM cc.agent_events e)
    UNION ALL
    SELECT (SELECT min(e.agent) FROM cc.agent_events e WHERE e.agent > a.agent)
      FROM agents a WHERE a.agent IS NOT NULL
), grid AS (
    SELECT g.interval_start
      FROM generate_series(
               date_bin('15 minutes',
                        (SELECT min(f.first_at) FROM agents a
                            CROSS JOIN LATERAL (SELECT min(e.at) AS first_at FROM cc.agent_events e
                                                 WHERE e.agent = a.agent) f),
                        TIMESTAMPTZ '2000-01-01 00:00:00+00'),
               now(), INTERVAL '15 minutes') AS g (interval_start)
)
SELECT
    a.agent,
    g.interval_start,
    x.logged_in_seconds,
    x.ready_seconds,
    x.ringing_seconds,
    x.talk_seconds,
    x.wrapup_seconds,
    x.pause_seconds,
    CASE WHEN x.logged_in_seconds - x.pause_seconds > 0
         THEN ((x.talk_seconds + x.wrapup_seconds) / (x.logged_in_seconds - x.pause_seconds))::float8 END
        AS occupancy,
    x.calls
FROM grid g
CROSS JOIN agents a
CROSS JOIN LATERAL (
    SELECT
        round(coalesce(sum(s.seconds) FILTER (WHERE s.state <> 'logged_out'), 0), 3) AS logged_in_seconds,
        round(coalesce(sum(s.seconds) FILTER (WHERE s.state = 'ready'), 0), 3) AS ready_seconds,
        round(coalesce(sum(s.seconds) FILTER (WHERE s.state = 'ringing'), 0), 3) AS ringing_seconds,
        round(coalesce(sum(s.seconds) FILTER (WHERE s.state = 'on_call'), 0), 3) AS talk_seconds,
        round(coalesce(sum(s.seconds) FILTER (WHERE s.state = 'wrapup'), 0), 3) AS wrapup_seconds,
        round(coalesce(sum(s.seconds) FILTER (WHERE s.state = 'paused'), 0), 3) AS pause_seconds,
        count(*) FILTER (WHERE s.state = 'on_call' AND s.at >= g.interval_start AND NOT s.same_call)::integer
            AS calls
    FROM (
        SELECT
            e.state,
            e.at,
            -- the part of [at, next event) inside the interval, up to now()
            greatest(0, extract(epoch FROM (
                least(coalesce(lead(e.at) OVER w, now()), now(), g.interval_start + INTERVAL '15 minutes')
                - greatest(e.at, g.interval_start)))) AS seconds,
            -- an on_call event continuing the same call (re-login, adoption after a restart)
            coalesce(lag(e.state) OVER w = 'on_call' AND lag(e.call_id) OVER w = e.call_id, false) AS same_call
        FROM (
            -- the state the agent was in when the interval began ...
            (SELECT p.id, p.at, p.state, p.call_id FROM cc.agent_events p
              WHERE p.agent = a.agent AND p.at < g.interval_start
              ORDER BY p.at DESC, p.id DESC LIMIT 1)
            UNION ALL
            -- ... the changes inside it ...
            (SELECT i.id, i.at, i.state, i.call_id FROM cc.agent_events i
              WHERE i.agent = a.agent AND i.at >= g.interval_start
                AND i.at < g.interval_start + INTERVAL '15 minutes')
            UNION ALL
            -- ... and the first change after it (where the last state ends)
            (SELECT n.id, n.at, n.state, n.call_id FROM cc.agent_events n
              WHERE n.agent = a.agent AND n.at >= g.interval_start + INTERVAL '15 minutes'
              ORDER BY n.at, n.id LIMIT 1)
        ) e
        WINDOW w AS (ORDER BY e.at, e.id)
    ) s
    WHERE s.at < g.interval_start + INTERVAL '15 minutes'
) x
WHERE a.agent IS NOT NULL AND (x.logged_in_seconds > 0 OR x.calls > 0);

CREATE OR REPLACE VIEW report.agent_intervals_30m AS
SELECT
    agent,
    interval_start,
    logged_in_seconds,
    ready_seconds,
    ringing_seconds,
    talk_seconds,
    wrapup_seconds,
    pause_seconds,
    CASE WHEN logged_in_seconds - pause_seconds > 0
         THEN ((talk_seconds + wrapup_seconds) / (logged_in_seconds - pause_seconds))::float8 END AS occupancy,
    calls
FROM (
    SELECT
        agent,
        date_bin('30 minutes', interval_start, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS interval_start,
        sum(logged_in_seconds) AS logged_in_seconds,
        sum(ready_seconds) AS ready_seconds,
        sum(ringing_seconds) AS ringing_seconds,
        sum(talk_seconds) AS talk_seconds,
        sum(wrapup_seconds) AS wrapup_seconds,
        sum(pause_seconds) AS pause_seconds,
        sum(calls)::integer AS calls
    FROM report.agent_intervals
    GROUP BY 1, 2
) h;

CREATE OR REPLACE VIEW report.queue_settings AS
SELECT queue, service_level_seconds, short_abandon_seconds FROM cc.queue_settings;
