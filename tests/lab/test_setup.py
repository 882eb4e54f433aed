"""`make run` from any folder: a copy of the repository in a private (0700) temporary folder brings up
its own lab on other ports (PostgreSQL under /var/lib/cc_ari, which the postgres user can reach),
and a second `lab.py run` brings back an Asterisk that was SIGKILLed, quickly."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.lab

ROOTFS = Path(os.environ.get("CC_ASTERISK_ROOTFS", "/var/cache/cc_ari/asterisk-rootfs"))
STATE_ROOT = Path("/var/lib/cc_ari")
# The lab's default ports (LAB.md), moved by an offset that no other lab uses (bench: +200).
PORTS = {"CC_SIP_PORT": 5060, "CC_ARI_PORT": 8088, "CC_AMI_PORT": 5038, "CC_PG_PORT": 55432,
         "CC_HTTP_PORT": 8080, "CC_CARRIER_PORT": 5080}
RTP = (20100, 20400)  # between the main lab's 10000-20000 and the tests' SIPp ports (21000+)


def port_free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_ports() -> dict[str, str]:
    for offset in range(700, 1000, 10):
        if all(port_free(p + offset) for p in PORTS.values()):
            return {k: str(v + offset) for k, v in PORTS.items()}
    pytest.fail("no free set of ports for a second lab")


def copy_checkout(dest: Path) -> None:
    """The repository as a fresh clone would have it: tracked plus untracked-not-ignored files."""
    names = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"],
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, names):
        src = REPO / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
    (dest / ".venv").symlink_to(REPO / ".venv")  # the venv is the main one (make's venv step not run)


def healthz(port: str) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:  # 503 while Asterisk is away
        return json.loads(exc.read())  # type: ignore[no-any-return]
    except (urllib.error.URLError, OSError, ValueError):
        return None


def proc_state(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()[0]


def bound_ports(pid: int) -> set[int]:
    """Ports a process listens on (TCP) or has bound (UDP)."""
    out = subprocess.run(["ss", "-H", "-lntup"], capture_output=True, text=True, check=True).stdout
    ports = set()
    for line in out.splitlines():
        if f"pid={pid}," in line:
            ports.add(int(line.split()[4].rsplit(":", 1)[1]))
    return ports


class NestedLab:
    def __init__(self, root: Path, ports: dict[str, str]) -> None:
        self.root = root
        self.ports = ports
        self.lab = root / ".lab"
        self.tag = hashlib.sha256(str(self.lab.resolve()).encode()).hexdigest()[:10]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CC_")}
        self.env.update(ports, CC_RTP_START=str(RTP[0]), CC_RTP_END=str(RTP[1]))

    def lab_py(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        python = shutil.which("python3") or sys.executable
        return subprocess.run([python, "scripts/lab.py", *args], cwd=self.root, env=self.env, text=True,
                              capture_output=True, timeout=timeout)

    def asterisk_pid(self) -> int:
        return int((self.lab / "run" / "asterisk.pid").read_text().strip())

    def cleanup(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.lab_py("stop", timeout=60)
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.lab_py("clean", timeout=60)
        for d in (STATE_ROOT / self.tag, ROOTFS / "srv" / "cc_ari" / self.tag, self.root):
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(autouse=True)
def all_agents_logged_out() -> Iterator[None]:
    """Overrides conftest's: these tests run a lab of their own and need nothing of the main one."""
    yield


@pytest.fixture
def nested() -> Iterator[NestedLab]:
    root = Path(tempfile.mkdtemp(prefix="cc_ari_clone_"))
    assert stat.S_IMODE(root.stat().st_mode) == 0o700  # the postgres user cannot enter it
    lab = NestedLab(root, free_ports())
    try:
        copy_checkout(root)
        yield lab
    finally:
        lab.cleanup()


def assert_ran(res: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 0, f"lab.py run failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"


def test_lab_runs_from_a_private_folder_and_brings_back_a_killed_asterisk(nested: NestedLab) -> None:
    http = nested.ports["CC_HTTP_PORT"]
    t0 = time.monotonic()
    assert_ran(nested.lab_py("run"))
    first_up = time.monotonic() - t0
    health = healthz(http)
    assert health is not None and health["ari"] is True and health["database"] is True, health

    # PostgreSQL's cluster lives where the postgres user can reach it; .lab/pg points there
    pg = nested.lab / "pg"
    assert pg.is_symlink() and pg.resolve() == STATE_ROOT / nested.tag / "pg", pg
    st = pg.resolve().stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (pwd.getpwnam("postgres").pw_uid, 0o700)
    # logs hold caller numbers: 0750 directory, 0640 files
    logs = nested.lab / "logs"
    assert stat.S_IMODE(logs.stat().st_mode) == 0o750
    files = sorted(p.name for p in logs.iterdir())
    assert {"asterisk.out", "cc_ari.out", "cc_ari.jsonl"} <= set(files), files
    for f in logs.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o640, (f.name, oct(f.stat().st_mode))

    # every port this lab opens is one it was given (or one the kernel picked)
    env = nested.env
    asterisk = nested.asterisk_pid()
    given = {int(env["CC_SIP_PORT"]), int(env["CC_ARI_PORT"]), int(env["CC_AMI_PORT"])}
    low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    stray = {p for p in bound_ports(asterisk) - given
             if not (RTP[0] <= p <= RTP[1] or low <= p <= high)}
    assert not stray, f"Asterisk bound ports not set from the environment: {stray}"
    service = int((nested.lab / "run" / "cc_ari.pid").read_text().strip())
    assert bound_ports(service) == {int(http)}

    # (b) Asterisk SIGKILLed: a dead process (a zombie if nobody reaps it) with its pid file left
    os.kill(asterisk, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while proc_state(asterisk) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.05)
    t1 = time.monotonic()
    while (h := healthz(http)) is not None and h.get("ari") and time.monotonic() - t1 < 10:
        time.sleep(0.2)
    t1 = time.monotonic()
    assert_ran(nested.lab_py("run", timeout=60))
    recovered = time.monotonic() - t1
    assert recovered < 20, f"lab.py run took {recovered:.1f} s to bring Asterisk back"
    revived = nested.asterisk_pid()
    assert revived != asterisk and proc_state(revived) not in (None, "Z")
    health = healthz(http)
    assert health is not None and health["ari"] is True, health

    # PostgreSQL's postmaster and cc_ari SIGKILLed together: both brought back
    service = int((nested.lab / "run" / "cc_ari.pid").read_text().strip())
    postmaster = int((nested.lab / "pg" / "data" / "postmaster.pid").read_text().split()[0])
    for pid in (service, postmaster):
        os.kill(pid, signal.SIGKILL)
    t2 = time.monotonic()
    while healthz(http) is not None and time.monotonic() - t2 < 5:
        time.sleep(0.1)
    t2 = time.monotonic()
    assert_ran(nested.lab_py("run", timeout=60))
    both = time.monotonic() - t2
    health = healthz(http)
    assert health is not None and health["ari"] is True and health["database"] is True, health
    assert int((nested.lab / "run" / "cc_ari.pid").read_text().strip()) != service
    postmaster = int((nested.lab / "pg" / "data" / "postmaster.pid").read_text().split()[0])
    assert proc_state(postmaster) not in (None, "Z")

    # Asterisk hung (SIGSTOP: its process is there, nothing answers): stopped and started again
    os.kill(revived, signal.SIGSTOP)
    t3 = time.monotonic()
    res = nested.lab_py("run", timeout=90)
    assert_ran(res)
    unhung = time.monotonic() - t3
    assert "does not answer" in res.stdout, res.stdout
    assert proc_state(revived) in (None, "Z")
    revived = nested.asterisk_pid()
    health = healthz(http)
    assert health is not None and health["ari"] is True, health
    print(f"first run {first_up:.1f} s; brought back: Asterisk {recovered:.1f} s, PostgreSQL + cc_ari {both:.1f} s, "
          f"hung Asterisk {unhung:.1f} s")

    # (c) stopped cleanly: nothing of it answers any more
    res = nested.lab_py("stop", timeout=60)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    assert healthz(http) is None
    deadline = time.monotonic() + 10
    while proc_state(postmaster) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in (revived, postmaster):
        assert proc_state(pid) in (None, "Z"), f"pid {pid} still runs after lab.py stop"
    assert all(port_free(int(p)) for p in nested.ports.values()), nested.ports


def test_a_set_up_failure_is_one_line_with_what_to_do(nested: NestedLab) -> None:
    # the ARI port taken by another program: said in one line, with the variable to change
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", int(nested.ports["CC_ARI_PORT"])))
        squatter.listen()
        res = nested.lab_py("run")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr, res.stderr
    [line] = [ln for ln in res.stderr.splitlines() if ln.startswith("lab: ")]
    port = nested.ports["CC_ARI_PORT"]
    assert re.search(rf"lab: starting Asterisk: .*{port}.* in use .* — .*CC_ARI_PORT", line), line
