"""Inbound calls end to end: SIPp carrier -> Asterisk -> cc_ari (IVR, queue, agents) -> PostgreSQL."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest

from conftest import legs_of, wait_call_row

pytestmark = pytest.mark.lab


def wav_seconds(path: str) -> float:
    with wave.open(path) as w:
        return w.getnframes() / float(w.getframerate())


async def test_call_to_support_number_is_answered_recorded_and_logged(call, phones, db, caller_number):
    phones("agent1", queues=["support"])
    sipp = call("5001", caller_number, steps=[("pause", 1500), ("audio", None), ("pause", 4000)])
    res = await asyncio.to_thread(sipp.wait, 60)
    assert res.returncode == 0, res.errors or res.stderr

    [row] = await wait_call_row(db, caller_number)
    assert row["direction"] == "inbound"
    assert row["dnis"] == "5001"
    assert row["queue"] == "support"
    assert row["outcome"] == "answered"
    assert row["agent"] == "agent1"
    assert 0 <= row["wait_seconds"] < 5
    assert 3.0 < row["talk_seconds"] < 10
    legs = await legs_of(db, row["call_id"])
    roles = sorted(leg["role"] for leg in legs)
    assert roles == ["agent", "caller"]
    assert all(leg["ended_at"] is not None for leg in legs)
    rec = row["recording_path"]
    assert rec and Path(rec).exists()
    assert abs(wav_seconds(rec) - float(row["talk_seconds"])) < 1.5
