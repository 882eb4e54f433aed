"""Conversation recordings as Asterisk's MixMonitor on one channel, started over AMI.

Why not ARI's bridge recording: it adds a recorder channel to the conversation's bridge, which
turns a two-party bridge (frames passed through) into a three-party softmix bridge (decoded,
mixed and re-encoded every 20 ms for every party) — the largest share of what an ARI call cost
Asterisk more than a native `Queue()` (see `make bench-lab`). MixMonitor is an audiohook on the
caller's channel, exactly what app_queue's recordings use: both directions mixed into one file,
and it keeps recording across a cc_ari restart (it belongs to the channel, not to cc_ari).

`start()` is confirmed by the action's response (Asterisk attached the audiohook, or said why
not); a failure is logged and the call goes on unrecorded. MixMonitor stops when the channel
hangs up, so a finished call needs no stop request.
"""

from __future__ import annotations

from typing import Protocol

import structlog

from cc_ari.ami.errors import AmiError

log = structlog.get_logger("cc_ari.telephony")


class AmiActions(Protocol):
    async def action(self, name: str, **fields: str) -> dict[str, str]: ...


class MixMonitorRecorder:
    def __init__(self, ami: AmiActions, asterisk_dir: str) -> None:
        """`asterisk_dir`: where the files go, as Asterisk sees it (it may run in a chroot)."""
        self._ami = ami
        self._dir = asterisk_dir.rstrip("/")

    async def start(self, channel_id: str, name: str) -> bool:
        """Record `channel_id` (both directions) into `<dir>/<name>.wav`; True once started."""
        try:
            await self._ami.action("MixMonitor", Channel=channel_id, File=f"{self._dir}/{name}.wav")
        except AmiError as exc:
            log.error("recording_failed", recording=name, error=str(exc))
            return False
        return True

    async def stop(self, channel_id: str) -> None:
        try:
            await self._ami.action("StopMixMonitor", Channel=channel_id)
        except AmiError as exc:
            log.warning("recording_stop_failed", channel=channel_id, error=str(exc))
