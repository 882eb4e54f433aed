"""Supervision of live calls: listen, whisper, barge (ARI snoop channels), logged in report.monitoring."""

from cc_ari.db.monitoring import MONITORING_KINDS
from cc_ari.supervision.monitor import MONITOR_APP_ARG, SNOOP_APP_ARG, Mode, Monitor, MonitorError, Monitors

__all__ = ["MONITORING_KINDS", "MONITOR_APP_ARG", "SNOOP_APP_ARG", "Mode", "Monitor", "MonitorError", "Monitors"]
