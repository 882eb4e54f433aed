"""Agents' softphones: digest-authenticated REGISTER against the real Asterisk."""

from __future__ import annotations

import pytest

from sipp import AgentPhone

pytestmark = pytest.mark.lab


def test_wrong_sip_password_is_refused(lab, api):
    import time

    phone = AgentPhone("agent20", "not-the-password", sip_target=f"127.0.0.1:{lab['CC_SIP_PORT']}")
    try:
        assert api.agent("agent20")["registered"] is False  # nothing registered to begin with
        res = phone.register()
        assert res.returncode != 0  # a second 401 instead of 200
        time.sleep(1.0)  # an accepted REGISTER shows up in well under a second
        assert api.agent("agent20")["registered"] is False
    finally:
        phone.stop()


def test_right_password_registers_and_unregister_takes_it_offline(lab, api):
    import time

    phone = AgentPhone("agent19", lab["CC_AGENT_PASSWORD"], sip_target=f"127.0.0.1:{lab['CC_SIP_PORT']}")
    try:
        assert phone.register().returncode == 0
        deadline = time.monotonic() + 5
        while not api.agent("agent19")["registered"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert api.agent("agent19")["registered"]
        assert phone.unregister().returncode == 0
        deadline = time.monotonic() + 5
        while api.agent("agent19")["registered"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not api.agent("agent19")["registered"]
    finally:
        phone.stop()
