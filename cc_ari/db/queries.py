"""The SQL cc_ari runs, as named statements (`$n` parameters only). Only cc_ari/db/ uses them:
the rest of the code calls the named methods of `CallStore` (fetch_call, open_call_ids, ...)."""

from __future__ import annotations

AGENT_EVENT = """
INSERT INTO cc.agent_events (event_key, agent, state, reason, queues, call_id, at, campaigns)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_key) DO NOTHING
"""
AGENT_STATE = """
INSERT INTO cc.agents AS t (agent, state, queues, skills, pause_reason, campaigns)
VALUES ($1, $2, $3, $4::jsonb, $5, $6)
ON CONFLICT (agent) DO UPDATE SET state = EXCLUDED.state, queues = EXCLUDED.queues,
    skills = EXCLUDED.skills, pause_reason = EXCLUDED.pause_reason, campaigns = EXCLUDED.campaigns,
    updated_at = now()
"""
LOAD_AGENTS = "SELECT agent, state, queues, skills::text AS skills, pause_reason, campaigns FROM cc.agents"
LEAD_OUTCOME = """
UPDATE cc.leads SET status = $4, next_attempt_at = $5, last_outcome = $6, dialing_call_id = NULL, updated_at = now()
WHERE campaign = $1 AND lead_id = $2 AND dialing_call_id = $3
"""
FETCH_CALL = """
SELECT queue, queued_at, answered_at, ivr_path, recording_path, handled_by, agent, outcome, ended_at
FROM cc.calls WHERE call_id = $1
"""
OPEN_CALL_IDS = "SELECT call_id FROM cc.calls WHERE ended_at IS NULL AND call_id = ANY($1::text[])"
GET_CEL_CURSOR = "SELECT inode, offset_bytes FROM cc.cel_cursor WHERE source = $1"
SET_CEL_CURSOR = """
INSERT INTO cc.cel_cursor (source, inode, offset_bytes) VALUES ($1, $2, $3)
ON CONFLICT (source) DO UPDATE SET inode = EXCLUDED.inode, offset_bytes = EXCLUDED.offset_bytes, updated_at = now()
"""
PROBE = "SELECT 1"
