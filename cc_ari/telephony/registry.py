"""Which session owns which channel or bridge: every ARI event is routed to its owner's inbox.

Ownership is explicit: a session claims a channel id before it creates the channel (so even
its first event is routed), and a bridge id when it creates or adopts the bridge. Nothing is
found by parsing channel names.
"""

from __future__ import annotations

from cc_ari.ari.models import Event, PlaybackEvent, RecordingEvent
from cc_ari.telephony.models import Session


def _targets(ev: Event) -> tuple[str, ...]:
    ids = ev.channel_ids
    if isinstance(ev, RecordingEvent | PlaybackEvent) and ev.target_uri:
        kind, _, ident = ev.target_uri.partition(":")
        if kind == "bridge":
            return (*ids, f"bridge:{ident}")
    return ids


class ChannelRegistry:
    def __init__(self) -> None:
        self._owners: dict[str, Session] = {}

    def claim(self, channel_id: str, session: Session) -> None:
        self._owners[channel_id] = session

    def claim_bridge(self, bridge_id: str, session: Session) -> None:
        self._owners[f"bridge:{bridge_id}"] = session

    def release(self, *ids: str) -> None:
        for i in ids:
            self._owners.pop(i, None)

    def release_bridge(self, bridge_id: str) -> None:
        self._owners.pop(f"bridge:{bridge_id}", None)

    def release_session(self, session: Session) -> None:
        for key in [k for k, s in self._owners.items() if s is session]:
            del self._owners[key]

    def owner(self, channel_id: str) -> Session | None:
        return self._owners.get(channel_id)

    def __contains__(self, channel_id: object) -> bool:
        return channel_id in self._owners

    def __len__(self) -> int:
        return len(self._owners)

    def route(self, ev: Event) -> bool:
        """Deliver `ev` to every session that owns one of its channels/bridges (once each)."""
        delivered: list[Session] = []
        for key in _targets(ev):
            session = self._owners.get(key)
            if session is not None and all(session is not s for s in delivered):
                session.deliver(ev)
                delivered.append(session)
        return bool(delivered)
