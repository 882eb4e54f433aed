"""Supervision of live calls: listen, whisper, barge (ARI snoop channels), logged in report.monitoring."""

from cc_ari.supervision.monitor import MONITOR_APP_ARG, SNOOP_APP_ARG, Mode, Monitor, MonitorError, Monitors
from cc_ari.supervision.records import MONITORING_KINDS

__all__ = ["MONITORING_KINDS", "MONITOR_APP_ARG", "SNOOP_APP_ARG", "Mode", "Monitor", "MonitorError", "Monitors"]
