"""The benchmarks' own lab: `scripts/lab.py run|stop` under another CC_LAB_DIR and other ports.

Also the probes the benchmarks read: the API, ARI, PostgreSQL, /proc (CPU, RSS) and Asterisk's
log files. Stdlib + asyncpg (from the venv).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[2]
MAIN_LAB = REPO / ".lab"
BENCH_CONFIG = REPO / "bench" / "lab_cc_ari.toml"

# The lab's default ports (LAB.md); the bench lab moves each by `offset`.
PORTS = {"CC_SIP_PORT": 5060, "CC_ARI_PORT": 8088, "CC_AMI_PORT": 5038, "CC_PG_PORT": 55432,
         "CC_HTTP_PORT": 8080, "CC_CARRIER_PORT": 5080}
# RTP above the kernel's ephemeral range (32768-60999) and away from the main lab (10000-20000)
# and from the tests' SIPp ports (21000-41000): 2000 RTP sessions, enough for 800 waiting callers.
RTP_RANGE = (61000, 65000)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(msg: str) -> None:
    print(msg, flush=True)


def read_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    if not path.exists():
        return env
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            k, _, v = line[7:].partition("=")
            env[k] = shlex.split(v)[0] if v else ""
    return env


# ------------------------------------------------------------------------------------ /proc
def proc_times(pid: int) -> tuple[float, float]:
    """(own CPU seconds, CPU seconds of reaped children) of a process: utime+stime, cutime+cstime."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    rest = raw[raw.rindex(")") + 2:].split()  # rest[0] is field 3 (state)
    own = (int(rest[11]) + int(rest[12])) / CLK_TCK
    children = (int(rest[13]) + int(rest[14])) / CLK_TCK
    return own, children


def proc_ppid(pid: int) -> int:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return int(raw[raw.rindex(")") + 2:].split()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its direct children, living and reaped (postmaster + backends)."""
    own, reaped = proc_times(pid)
    total = own + reaped
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            if proc_ppid(int(d.name)) == pid:
                total += proc_times(int(d.name))[0]
    return total


def listener_pid(port: int, host: str = "127.0.0.1") -> int:
    """The process listening on TCP host:port (/proc/net/tcp), the parent one if several hold it."""
    want = f"{''.join(reversed([f'{int(b):02X}' for b in host.split('.')]))}:{port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        if cols[1] == want and cols[3] == "0A":  # 0A: LISTEN
            inodes.add(f"socket:[{cols[9]}]")
    holders: set[int] = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (d / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        holders.add(int(d.name))
                        break
    roots = [p for p in holders if proc_ppid(p) not in holders]
    if not roots:
        raise LookupError(f"nothing listens on {host}:{port}")
    return roots[0]


def catches_signal(pid: int, signum: int) -> bool:
    """Whether the process installed a handler for the signal (SigCgt of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


class FileTail:
    """Reads what a growing log file gained since the last read (from `start` on)."""

    def __init__(self, path: Path, *, from_end: bool = True) -> None:
        self.path = path
        self.offset = path.stat().st_size if from_end and path.exists() else 0

    def read_lines(self) -> list[str]:
        if not self.path.exists():
            return []
        size = self.path.stat().st_size
        if size < self.offset:  # rotated or truncated
            self.offset = 0
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        cut = data.rfind(b"\n") + 1  # whole lines only
        self.offset += cut
        return data[:cut].decode(errors="replace").splitlines()


# ------------------------------------------------------------------------------------ the lab
@dataclass
class BenchLab:
    """A lab instance of its own: CC_LAB_DIR=<lab_dir>, every port + offset, CC_CONFIG=bench toml."""

    lab_dir: Path = REPO / ".lab-bench"
    offset: int = 200
    agents: int = 20
    extra_env: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    _lock: IO[str] | None = None

    # -- environment
    def overrides(self) -> dict[str, str]:
        out = {k: str(v + self.offset) for k, v in PORTS.items()}
        out.update({
            "CC_LAB_DIR": str(self.lab_dir),
            "CC_RTP_START": str(RTP_RANGE[0]),
            "CC_RTP_END": str(RTP_RANGE[1]),
            "CC_CONFIG": str(BENCH_CONFIG),
            "CC_AGENT_COUNT": str(max(self.agents, 20)),
        })
        return out

    def lab_py(self, *args: str, timeout: float = 300, extra: dict[str, str] | None = None) -> None:
        env = dict(os.environ)
        # the main lab's variables must not leak into the bench lab (a shell with .lab/env sourced)
        for k in list(env):
            if k.startswith("CC_"):
                del env[k]
        env.update(self.overrides())
        env.update(self.extra_env)
        env.update(extra or {})
        python = shutil.which("python3") or sys.executable
        subprocess.run([python, str(REPO / "scripts" / "lab.py"), *args], check=True, timeout=timeout, env=env,
                       stdout=subprocess.DEVNULL if args[0] == "run" else None)

    def start(self, *, attempts: int = 4) -> None:
        """`lab.py run` for the bench lab (retried: lab.py may be mid-edit by someone), then checks."""
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        (self.lab_dir / ".gitignore").write_text("# the benchmarks' own lab (bench/lab); all generated\n*\n")
        self._lock = open(self.lab_dir / "bench.lock", "w")  # noqa: SIM115 (held until stop())
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"bench: another benchmark is using {self.lab_dir}; wait for it") from None
        # 800 waiting callers are ~2000 descriptors in Asterisk; its limit is inherited from here.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
        for attempt in range(1, attempts + 1):
            try:
                say(f"bench lab: starting {self.lab_dir} (ports +{self.offset}; lab.py run) ...")
                t0 = time.monotonic()
                self.lab_py("run")
                say(f"bench lab: up in {time.monotonic() - t0:.0f} s")
                break
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                if attempt == attempts:
                    raise SystemExit(f"bench: the bench lab did not start: {exc}") from exc
                say(f"bench lab: start failed ({exc}); retrying in 20 s (scripts/lab.py may be mid-edit)")
                time.sleep(20)
        self.env = read_env_file(self.lab_dir / "env")
        self.check_separate()

    def restart_service(self, extra: dict[str, str] | None = None) -> None:
        self.lab_py("service-restart", extra=extra)

    def stop(self) -> None:
        try:
            say("bench lab: stopping (lab.py stop)")
            self.lab_py("stop", timeout=120)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            say(f"bench lab: stop failed: {exc}")
        finally:
            if self._lock is not None:
                self._lock.close()
                self._lock = None

    # -- pids
    def pid(self, name: str) -> int:
        return int((self.lab_dir / "run" / f"{name}.pid").read_text().strip())

    def pg_pid(self) -> int:
        """The postmaster: the process listening on the lab's PostgreSQL port (wherever lab.py keeps
        the cluster's files)."""
        return listener_pid(int(self.env["CC_PG_PORT"]))

    def check_separate(self) -> None:
        """Say (and insist) that this instance shares no process, port or data with the main lab."""
        main = read_env_file(MAIN_LAB / "env")
        ours = {n: self.pid(n) for n in ("asterisk", "cc_ari")}
        theirs: dict[str, int | None] = {}
        for n in ours:
            try:
                theirs[n] = int((MAIN_LAB / "run" / f"{n}.pid").read_text().strip())
            except (OSError, ValueError):
                theirs[n] = None
        clash = [n for n in ours if ours[n] == theirs[n]]
        clash += [k for k in PORTS if main.get(k) and main.get(k) == self.env.get(k)]
        if self.env.get("CC_ASTERISK_INSTANCE") == main.get("CC_ASTERISK_INSTANCE"):
            clash.append("CC_ASTERISK_INSTANCE")
        pg = self.pg_pid()
        data_dir = os.readlink(f"/proc/{pg}/cwd")  # the postmaster runs in its data directory
        main_data = None
        with contextlib.suppress(OSError, ValueError, LookupError):
            main_data = os.readlink(f"/proc/{listener_pid(int(main['CC_PG_PORT']))}/cwd")
        if main_data is not None and main_data == data_dir:
            clash.append("PostgreSQL data directory")
        if clash:
            raise SystemExit(f"bench: the bench lab is NOT separate from the main lab: {clash}")
        say(f"bench lab: separate from the main lab — Asterisk pid {ours['asterisk']} (main {theirs['asterisk']}), "
            f"cc_ari pid {ours['cc_ari']} (main {theirs['cc_ari']}), SIP {self.env['CC_SIP_PORT']}, "
            f"API {self.env['CC_HTTP_PORT']}, PG {self.env['CC_PG_PORT']} data {data_dir} (main {main_data})")

    # -- files
    @property
    def messages_log(self) -> Path:
        return Path(self.env["CC_ASTERISK_INSTANCE"]) / "log" / "messages.log"

    @property
    def cel_log(self) -> Path:
        return Path(self.env["CC_CEL_LOG"])

    @property
    def sip_target(self) -> str:
        return f"127.0.0.1:{self.env['CC_SIP_PORT']}"

    # -- HTTP API and ARI
    def api(self, method: str, path: str, body: Any = None, *, timeout: float = 10) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.env["CC_API_URL"] + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.env['CC_API_TOKEN']}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def api_ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.api(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {data}")
        return data

    def ari(self, path: str, *, timeout: float = 10) -> Any:
        req = urllib.request.Request(f"{self.env['CC_ARI_URL']}/ari{path}")
        cred = f"{self.env['CC_ARI_USER']}:{self.env['CC_ARI_PASSWORD']}".encode()
        req.add_header("Authorization", "Basic " + b64encode(cred).decode())
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")

    def log_in(self, agents: Sequence[str], queues: Sequence[str]) -> None:
        for a in agents:
            self.api_ok("POST", f"/api/agents/{a}/login", {"queues": list(queues)})

    def log_out_all(self) -> None:
        for a in self.api_ok("GET", "/api/agents")["agents"]:
            if a["state"] != "logged_out":
                self.api("POST", f"/api/agents/{a['agent']}/logout")

    def wait_registered(self, agents: Sequence[str], timeout: float = 10) -> list[str]:
        """The agents cc_ari still does not see registered after `timeout`."""
        deadline = time.monotonic() + timeout
        missing = list(agents)
        while time.monotonic() < deadline:
            seen = {a["agent"]: a["registered"] for a in self.api_ok("GET", "/api/agents")["agents"]}
            missing = [a for a in agents if not seen.get(a)]
            if not missing:
                break
            time.sleep(0.2)
        return missing

    # -- PostgreSQL
    def sql(self, query: str, *args: object) -> list[Any]:
        return run_sql(self.env["CC_DATABASE_URL"], query, *args)

    def sql_val(self, query: str, *args: object) -> object:
        rows = self.sql(query, *args)
        return rows[0][0] if rows else None


def run_sql(url: str, query: str, *args: object) -> list[Any]:
    import asyncpg  # the venv's; imported here so that `--help` works anywhere

    async def go() -> list[Any]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return list(await conn.fetch(query, *args, timeout=60))
        finally:
            await conn.close()

    return asyncio.run(go())


# ------------------------------------------------------------------------------------ sampling
@dataclass
class CpuSnapshot:
    at: float
    asterisk: float
    cc_ari: float
    postgres: float


def cpu_snapshot(lab: BenchLab, pg_pid: int) -> CpuSnapshot:
    ast_own, ast_children = proc_times(lab.pid("asterisk"))
    cc_own, cc_children = proc_times(lab.pid("cc_ari"))
    return CpuSnapshot(time.monotonic(), ast_own + ast_children, cc_own + cc_children, tree_cpu(pg_pid))


def least_squares(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Slope of the least-squares line through (xs, ys); nan with fewer than 2 distinct xs."""
    n = len(xs)
    if n < 2:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return float("nan")
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def high_water(lines: Sequence[str]) -> dict[str, int]:
    """Asterisk's warnings `Taskprocessor '<name>' queue reached <n> scheduled tasks (high water
    mark: <m>)`, counted by taskprocessor name."""
    out: dict[str, int] = {}
    for line in lines:
        if "queue reached" not in line or "high water" not in line or "taskprocessor" not in line.lower():
            continue
        name = line.split("'")[1] if line.count("'") >= 2 else "?"
        out[name] = out.get(name, 0) + 1
    return out


def cel_events(lines: Sequence[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        with contextlib.suppress(ValueError):
            yield json.loads(line)
