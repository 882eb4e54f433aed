"""Call-control primitives over ARI, shared by every flow.

Each primitive has a timeout, treats a vanished channel (ARI 404) as normal flow, and waits
for what it started through the session's inbox (so the events stay in the call's order):
originate and await Stasis, answer, play and wait, play and collect a digit, holding and
mixing bridges, record (confirmed by RecordingStarted), snoop, hang up.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import structlog

from cc_ari.ari.client import AriClient
from cc_ari.ari.errors import AriBadRequest, AriError, AriNotFound
from cc_ari.ari.models import (
    Bridge,
    Channel,
    ChannelDtmfReceived,
    ChannelStateChange,
    Dial,
    PlaybackFinished,
    RecordingFailed,
    RecordingFinished,
    RecordingStarted,
    StasisStart,
)
from cc_ari.telephony.errors import ChannelGone, TelephonyError
from cc_ari.telephony.models import Leg, Session, utcnow
from cc_ari.telephony.registry import ChannelRegistry

log = structlog.get_logger("cc_ari.telephony")

MAX_PROMPT_SECONDS = 60.0
STATE_VAR = "CC_STATE"  # a flow's state on its anchor channel (save_state / load_state)
DIAL_FAILURES = frozenset({"NOANSWER", "BUSY", "CHANUNAVAIL", "CONGESTION", "CANCEL", "DONTCALL",
                           "TORTURE", "INVALIDARGS"})


def quote_caller_id(name: str, number: str) -> str:
    """A CALLERID(all) value from untrusted parts: quotes, backslashes, brackets and control
    characters cannot break out of the display name or the number."""
    clean_number = "".join(c for c in number if c.isalnum() or c in "+*#")[:32]
    clean_name = "".join(c for c in name if c.isprintable() and c not in '"\\<>')[:64]
    return f'"{clean_name}" <{clean_number}>'


@dataclass(frozen=True, slots=True)
class DialResult:
    answered: bool
    status: str  # ANSWER, NOANSWER, BUSY, ..., HANGUP, TIMEOUT


class CallControl:
    def __init__(self, ari: AriClient, registry: ChannelRegistry, *, prompts_dir: str) -> None:
        self.ari = ari
        self.registry = registry
        self._prompts_dir = prompts_dir

    # --- media ------------------------------------------------------------------------------
    def prompt_uris(self, prompts: Sequence[str]) -> list[str]:
        return [f"sound:{self._prompts_dir}/{p}" for p in prompts]

    async def answer(self, session: Session, channel_id: str) -> None:
        try:
            await self.ari.answer(channel_id)
        except AriNotFound:
            raise ChannelGone() from None
        leg = session.legs.get(channel_id)
        if leg is not None and leg.answered_at is None:
            leg.answered_at = utcnow()

    async def start_playback(self, channel_id: str, media: Sequence[str]) -> str:
        pb = f"pb-{uuid.uuid4().hex}"
        try:
            await self.ari.play(channel_id, list(media), pb)
        except AriNotFound:
            raise ChannelGone() from None
        return pb

    async def play_and_wait(self, session: Session, channel_id: str, media: Sequence[str], *,
                            max_seconds: float = MAX_PROMPT_SECONDS) -> None:
        """Play media and wait until it ends (digits are ignored)."""
        pb = await self.start_playback(channel_id, media)
        deadline = session.clock() + max_seconds
        while True:
            ev = await session.next(deadline - session.clock())
            if ev is None or (isinstance(ev, PlaybackFinished) and ev.playback_id == pb):
                return

    async def play_and_collect(self, session: Session, channel_id: str, media: Sequence[str],
                               timeout: float) -> str | None:
        """Play media, then wait `timeout` s for one digit. A digit interrupts the media."""
        pb = await self.start_playback(channel_id, media) if media else None
        playing = pb is not None
        deadline = session.clock() + (MAX_PROMPT_SECONDS if playing else timeout)
        while True:
            ev = await session.next(deadline - session.clock())
            if ev is None:
                if playing:  # a prompt that never reported its end: treat it as ended
                    playing = False
                    deadline = session.clock() + timeout
                    continue
                return None
            if isinstance(ev, ChannelDtmfReceived) and ev.channel.id == channel_id:
                if playing and pb is not None:
                    await self.ari.stop_playback(pb)
                return ev.digit
            if isinstance(ev, PlaybackFinished) and ev.playback_id == pb:
                playing = False
                deadline = session.clock() + timeout

    async def moh(self, channel_id: str, *, on: bool) -> None:
        with contextlib.suppress(AriError):
            await self.ari.moh(channel_id, on=on)

    # --- channels ---------------------------------------------------------------------------
    async def originate(self, session: Session, endpoint: str, *, channel_id: str, role: str, app_args: str,
                        originator: str | None = None, variables: Mapping[str, str] | None = None,
                        timeout: float = 5.0) -> Channel:
        """Create a channel into this app, owned by `session`, and wait until it is in Stasis
        (only then can it be dialed). The leg is in `session.legs` from the start."""
        self.registry.claim(channel_id, session)
        leg = session.legs[channel_id] = Leg(channel_id, role, endpoint, "", utcnow())
        try:
            ch = await self.ari.create_channel(endpoint, channel_id=channel_id, app_args=app_args,
                                               originator=originator, variables=variables)
        except AriError:
            leg.ended_at = utcnow()
            raise
        leg.channel_name = ch.name
        deadline = session.clock() + timeout
        while True:
            ev = await session.next(deadline - session.clock())
            if ev is None:
                raise TelephonyError(f"channel {channel_id} did not enter Stasis in {timeout} s")
            if isinstance(ev, StasisStart) and ev.channel.id == channel_id:
                return ch
            if session.ended(channel_id):
                raise TelephonyError(f"channel {channel_id} ended before it could be dialed")

    async def dial(self, session: Session, channel_id: str, *, timeout: float) -> DialResult:
        """Dial a created channel; wait until it answers, fails, or `timeout` (+2 s) passes."""
        try:
            await self.ari.dial(channel_id, timeout=int(timeout))
        except AriError as exc:
            log.info("dial_failed", channel=channel_id, error=str(exc))
            return DialResult(False, "CHANUNAVAIL")
        deadline = session.clock() + timeout + 2.0
        while True:
            ev = await session.next(deadline - session.clock())
            if ev is None:
                return DialResult(False, "TIMEOUT")
            if isinstance(ev, Dial) and ev.peer is not None and ev.peer.id == channel_id:
                if ev.dialstatus == "ANSWER":
                    break
                if ev.dialstatus in DIAL_FAILURES:
                    return DialResult(False, ev.dialstatus)
            elif isinstance(ev, ChannelStateChange) and ev.channel.id == channel_id and ev.channel.state == "Up":
                break
            if session.ended(channel_id):
                return DialResult(False, "HANGUP")
        leg = session.legs.get(channel_id)
        if leg is not None:
            leg.answered_at = utcnow()
        return DialResult(True, "ANSWER")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        """Hang up; a channel already gone is fine, and so is Asterisk being unreachable (logged)."""
        try:
            await self.ari.hangup(channel_id, reason)
        except AriError as exc:
            log.warning("hangup_failed", channel=channel_id, error=str(exc))

    async def set_vars(self, channel_id: str, values: Mapping[str, str]) -> None:
        """Channel variables, one request each (prefer `save_state` for a flow's own state)."""
        for name, value in values.items():
            try:
                await self.ari.set_var(channel_id, name, value)
            except AriNotFound:
                raise ChannelGone() from None

    async def save_state(self, channel_id: str, state: Mapping[str, str]) -> None:
        """A flow's explicit state on its channel, in one variable (`CC_STATE`, URL-encoded
        pairs) written in one request, so a restarted cc_ari can rebuild what it was doing."""
        await self.set_vars(channel_id, {STATE_VAR: urlencode(state)})

    async def load_state(self, channel_id: str) -> dict[str, str]:
        """What `save_state` left on the channel ({} when nothing, or the channel is gone)."""
        raw = await self.ari.get_var(channel_id, STATE_VAR)
        return dict(parse_qsl(raw or "", keep_blank_values=False))

    # --- bridges ----------------------------------------------------------------------------
    async def mixing_bridge(self, session: Session, bridge_id: str, channels: Sequence[str]) -> None:
        self.registry.claim_bridge(bridge_id, session)
        await self.ari.create_bridge(bridge_id, "mixing", name=bridge_id)
        try:
            await self.ari.add_to_bridge(bridge_id, list(channels))
        except (AriNotFound, AriBadRequest) as exc:
            # 400 "Channel not found" / 422 "not in Stasis": one of them hung up meanwhile (the
            # ids are ours, so the request itself is well-formed). The anchor gone ends the
            # session; another leg gone is the caller's flow's to handle.
            if session.anchor_gone() or not await self.ari.channel_exists(session.anchor):
                raise ChannelGone() from exc
            raise TelephonyError(f"bridging {bridge_id}: a leg is gone ({exc})") from exc

    async def destroy_bridge(self, bridge_id: str) -> None:
        try:
            await self.ari.destroy_bridge(bridge_id)
        except AriError as exc:
            log.warning("bridge_destroy_failed", bridge=bridge_id, error=str(exc))
        self.registry.release_bridge(bridge_id)

    async def record_bridge(self, session: Session, bridge_id: str, name: str, *, timeout: float = 3.0) -> bool:
        """Start recording a bridge; True once Asterisk confirms (RecordingStarted)."""
        try:
            await self.ari.record_bridge(bridge_id, name)
        except AriError as exc:
            log.error("recording_failed", error=str(exc))
            return False
        deadline = session.clock() + timeout
        while True:
            ev = await session.next(deadline - session.clock())
            if ev is None:
                log.error("recording_not_confirmed", recording=name, after_s=timeout)
                return False
            if isinstance(ev, RecordingStarted) and ev.name == name:
                return True
            if isinstance(ev, RecordingFailed | RecordingFinished) and ev.name == name:
                log.error("recording_failed", recording=name, cause=ev.cause)
                return False

    async def stop_recording(self, name: str) -> None:
        try:
            await self.ari.stop_recording(name)
        except AriError as exc:
            log.warning("recording_stop_failed", recording=name, error=str(exc))

    async def snoop(self, session: Session, channel_id: str, *, snoop_id: str, role: str, app_args: str,
                    spy: str, whisper: str, timeout: float = 5.0) -> Channel:
        """A snoop channel on `channel_id` (supervision), owned by `session`, in Stasis."""
        self.registry.claim(snoop_id, session)
        leg = session.legs[snoop_id] = Leg(snoop_id, role, "Snoop", "", utcnow())
        ch = await self.ari.snoop(channel_id, snoop_id=snoop_id, app_args=app_args, spy=spy, whisper=whisper)
        leg.channel_name = ch.name
        deadline = session.clock() + timeout
        while True:
            ev = await session.next(deadline - session.clock())
            if ev is None:
                raise TelephonyError(f"snoop {snoop_id} did not enter Stasis in {timeout} s")
            if isinstance(ev, StasisStart) and ev.channel.id == snoop_id:
                return ch


class HoldingBridges:
    """Holding bridges per queue, found again after a restart by their name (`cc-hold-<queue>`).

    At most `capacity` callers per bridge: every join or leave makes Asterisk describe the whole
    bridge (every channel id in it) to the application, so one bridge of 800 callers costs
    O(n^2) work in Asterisk's ARI queue as callers come and go (its taskprocessor backs up);
    bridges of 50 keep it linear. Callers' music is their own (channel MOH), so a caller never
    notices which bridge they are in.
    """

    PREFIX = "cc-hold-"

    def __init__(self, ari: AriClient, *, capacity: int = 50) -> None:
        self._ari = ari
        self._capacity = capacity
        self._bridges: dict[str, list[str]] = {}  # queue -> its bridges, oldest first
        self._size: dict[str, int] = {}  # bridge -> callers cc_ari put (or found) in it
        self._where: dict[str, str] = {}  # caller channel -> bridge
        self._lock = asyncio.Lock()

    def adopt(self, bridges: Sequence[Bridge]) -> None:
        """The holding bridges that exist in Asterisk (after a (re)connection), with their callers."""
        self._bridges, self._size, self._where = {}, {}, {}
        for b in bridges:
            queue = self.queue_of(b.name)
            if queue is None:
                continue
            self._bridges.setdefault(queue, []).append(b.id)
            self._size[b.id] = len(b.channels)
            self._where.update(dict.fromkeys(b.channels, b.id))

    def queue_of(self, bridge_name: str) -> str | None:
        return bridge_name.removeprefix(self.PREFIX) if bridge_name.startswith(self.PREFIX) else None

    def bridge_of(self, channel_id: str) -> str | None:
        return self._where.get(channel_id)

    async def enter(self, queue: str, channel_id: str) -> None:
        bridge_id = await self._bridge(queue)
        try:
            await self._ari.add_to_bridge(bridge_id, [channel_id], role="participant")
        except AriNotFound:
            # The bridge vanished (Asterisk restarted?) or the channel did: a new bridge, once.
            self._drop(queue, bridge_id)
            bridge_id = await self._bridge(queue)
            try:
                await self._ari.add_to_bridge(bridge_id, [channel_id], role="participant")
            except AriNotFound:
                raise ChannelGone() from None
        self._where[channel_id] = bridge_id
        self._size[bridge_id] = self._size.get(bridge_id, 0) + 1

    async def leave(self, queue: str, channel_id: str) -> None:
        bridge_id = self.forget(channel_id)
        if bridge_id is not None:
            try:
                await self._ari.remove_from_bridge(bridge_id, channel_id)
            except AriError as exc:
                log.warning("holding_leave_failed", queue=queue, error=str(exc))

    def forget(self, channel_id: str) -> str | None:
        """The caller is no longer counted in its bridge (it left, or hung up); its bridge."""
        bridge_id = self._where.pop(channel_id, None)
        if bridge_id is not None and bridge_id in self._size:
            self._size[bridge_id] = max(0, self._size[bridge_id] - 1)
        return bridge_id

    def _drop(self, queue: str, bridge_id: str) -> None:
        if bridge_id in self._bridges.get(queue, ()):
            self._bridges[queue].remove(bridge_id)
        self._size.pop(bridge_id, None)

    async def _bridge(self, queue: str) -> str:
        """The queue's first bridge with room, or a new one."""
        async with self._lock:
            for bridge_id in self._bridges.get(queue, ()):
                if self._size.get(bridge_id, 0) < self._capacity:
                    return bridge_id
            bridge_id = f"{self.PREFIX}{queue}-{uuid.uuid4().hex[:8]}"
            await self._ari.create_bridge(bridge_id, "holding", name=f"{self.PREFIX}{queue}")
            self._bridges.setdefault(queue, []).append(bridge_id)
            self._size[bridge_id] = 0
            log.info("holding_bridge_created", queue=queue, bridge=bridge_id,
                     bridges=len(self._bridges[queue]))
            return bridge_id
