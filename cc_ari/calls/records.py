"""The one place that turns a live call into cc.calls / cc.legs rows (through the CallStore)."""

from __future__ import annotations

from typing import Any

from cc_ari.calls.models import Call
from cc_ari.db.store import CallStore
from cc_ari.telephony.models import Leg


class CallRecords:
    def __init__(self, store: CallStore) -> None:
        self._store = store

    def update(self, call: Call, **values: Any) -> None:
        self._store.call(call.call_id, direction=call.direction, started_at=call.started_at, **values)

    def leg(self, call: Call, leg: Leg) -> None:
        self._store.leg(leg.leg_id, **leg.as_row(call.call_id))

    def started(self, call: Call) -> None:
        extra = {"campaign": call.campaign, "lead_id": call.lead_id} if call.outbound else {}
        self.update(call, caller=call.caller or None, dnis=call.dnis, **extra)
        if call.call_id in call.legs:
            self.leg(call, call.caller_leg)

    def final(self, call: Call, *, handed_over: bool) -> None:
        """The call row first (legs reference it), then every leg. A call handed to the fallback
        dialplan keeps its caller leg open: the CEL reconciler ends it."""
        extra = ({"campaign": call.campaign, "lead_id": call.lead_id, "amd_result": call.amd_result,
                  "amd_seconds": call.amd_seconds, "connect_seconds": call.connect_seconds}
                 if call.outbound else {})
        agent = call.agent if (call.answered_at and (not call.outbound or call.connect_seconds is not None)) else None
        self.update(call, queue=call.queue, agent=agent,
                    answered_at=call.answered_at, ended_at=call.ended_at, outcome=call.outcome,
                    recording_path=call.recording_path, ivr_path=call.ivr_path or None,
                    handled_by=call.handled_by, **extra)
        for leg in call.legs.values():
            if handed_over and leg.leg_id == call.call_id:
                leg.ended_at = None
                leg.hangup_cause = None
            self.leg(call, leg)
