"""The fallback's queues: app_queue members kept in step with cc_ari's agents (see members.py)."""
