"""Outbound campaigns: campaigns, their leads and do-not-call lists (issue #7)."""
