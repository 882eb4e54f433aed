#!/usr/bin/env python3
"""The lab: cc_ari's default, self-contained installation (see README "The lab").

    lab.py deps     install the Debian packages the lab needs (only what is missing)
    lab.py run      set up and start PostgreSQL, Asterisk and cc_ari, detached; returns when
                    all three answer
    lab.py stop     stop all three
    lab.py status   say what runs
    lab.py service-stop / service-start   only the cc_ari service (used by fallback tests)
    lab.py clean    stop, then remove the lab's state: .lab, its PostgreSQL cluster and its
                    Asterisk instance directory

Everything is idempotent, and `run` brings back whatever died: each part is judged alive by
what answers (Asterisk's control socket and ARI, PostgreSQL's socket, cc_ari's /healthz), never
by a pid file alone. Secrets are generated on first run into .lab/env (mode 0600). The
PostgreSQL cluster lives under /var/lib/cc_ari/<tag of the lab path>/pg (the postgres user
cannot enter a checkout in a private folder); .lab/pg links to it. A set-up failure is one line:
`lab: <what failed>: <cause> — <what to do>` (CC_LAB_DEBUG=1 shows the traceback).
Stdlib only: it runs before the virtualenv exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB = Path(os.environ.get("CC_LAB_DIR", REPO / ".lab")).resolve()
ENV_FILE = LAB / "env"
AGENT_TOKENS_FILE = LAB / "agent-tokens.json"
RUN = LAB / "run"
LOGS = LAB / "logs"
ROOTFS = Path(os.environ.get("CC_ASTERISK_ROOTFS", "/var/cache/cc_ari/asterisk-rootfs"))
VENV_BIN = REPO / ".venv" / "bin"
# System state of this lab that must not live in the checkout (the postgres user cannot enter a
# checkout in a private folder such as /root or a mktemp -d): /var/lib/cc_ari/<tag>/.
STATE_ROOT = Path(os.environ.get("CC_STATE_ROOT", "/var/lib/cc_ari"))

# Defaults of the lab contract (LAB.md); each can be overridden from the environment.
DEFAULTS = {
    "CC_SIP_HOST": "127.0.0.1",
    "CC_SIP_PORT": "5060",
    "CC_ARI_HOST": "127.0.0.1",
    "CC_ARI_PORT": "8088",
    "CC_AMI_HOST": "127.0.0.1",
    "CC_AMI_PORT": "5038",
    "CC_PG_PORT": "55432",
    "CC_HTTP_HOST": "127.0.0.1",
    "CC_HTTP_PORT": "8080",
    "CC_CARRIER_HOST": "127.0.0.2",
    "CC_CARRIER_PORT": "5080",
    "CC_AGENT_COUNT": "20",
    "CC_RTP_START": "10000",
    "CC_RTP_END": "20000",
    "CC_ARI_APP": "cc_ari",
}
SECRETS = ("CC_API_TOKEN", "CC_SUPERVISOR_TOKEN", "CC_AGENT_TOKEN", "CC_AGENT_TOKEN_SEED",
           "CC_AGENT_PASSWORD", "CC_ARI_PASSWORD", "CC_AMI_PASSWORD", "CC_PG_PASSWORD")

DEBIAN_PACKAGES = {
    # command that proves it is there -> package
    "sipp": "sip-tester",
    "espeak-ng": "espeak-ng",
    "sox": "sox",
    "chromium": "chromium",  # the dashboard's browser tests (Playwright drives Debian's Chromium)
}


def say(msg: str) -> None:
    with contextlib.suppress(BrokenPipeError):  # `make run | head` must not stop the set-up
        print(f"lab: {msg}", flush=True)


def sh(*cmd: str | Path, check: bool = True, quiet: bool = False, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a command; quiet: no output, but stderr is kept for the error message if it fails."""
    args = [str(c) for c in cmd]
    if quiet and "capture_output" not in kw:
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(args, check=check, text=True, **kw)  # type: ignore[call-overload,no-any-return]


class LabError(Exception):
    """A set-up failure, told in one line: what failed, why, and what to do."""

    def __init__(self, what: str, cause: str, todo: str) -> None:
        super().__init__(what, cause, todo)
        self.what, self.cause, self.todo = what, cause, todo

    def __str__(self) -> str:
        return f"{self.what}: {self.cause} — {self.todo}"


def _program(cmd: object) -> str:
    """The program a command line runs, past runuser/chroot wrappers."""
    args = [str(a) for a in cmd] if isinstance(cmd, list | tuple) else str(cmd).split()
    while args and Path(args[0]).name in ("runuser", "chroot", "env"):
        if Path(args[0]).name == "runuser" and "--" in args:
            args = args[args.index("--") + 1 :]
        elif Path(args[0]).name == "chroot":
            args = args[2:]
        else:
            args = [a for a in args[1:] if "=" not in a]
    return Path(args[0]).name if args else "command"


def _last_line(*texts: object) -> str:
    for text in texts:
        if isinstance(text, bytes):
            text = text.decode(errors="replace")
        if isinstance(text, str):
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if lines:
                return lines[-1][:300]
    return ""


def cause_of(exc: BaseException) -> str:
    """One line saying why `exc` happened."""
    if isinstance(exc, subprocess.CalledProcessError):
        detail = _last_line(exc.stderr, exc.stdout)
        return f"`{_program(exc.cmd)}` exited with status {exc.returncode}" + (f": {detail}" if detail else "")
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"`{_program(exc.cmd)}` did not finish within {exc.timeout:.0f} s"
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]


@contextlib.contextmanager
def step(what: str, todo: str) -> Iterator[None]:
    """Failures inside become a LabError saying `what` failed and `todo`."""
    try:
        yield
    except LabError:
        raise
    except (subprocess.SubprocessError, OSError, ValueError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise LabError(what, cause_of(exc), todo) from exc


# --------------------------------------------------------------------------------------- deps
def pg_bindir() -> Path | None:
    base = Path("/usr/lib/postgresql")
    if not base.is_dir():
        return None
    versions = sorted((p for p in base.iterdir() if (p / "bin" / "initdb").exists()), key=lambda p: int(p.name))
    return versions[-1] / "bin" if versions else None


def deps() -> None:
    missing = [pkg for cmd, pkg in DEBIAN_PACKAGES.items() if shutil.which(cmd) is None]
    if pg_bindir() is None:
        missing.append("postgresql")
    if subprocess.run([sys.executable, "-c", "import ensurepip, venv"], capture_output=True).returncode != 0:
        missing.append("python3-venv")
    needs_rootfs = shutil.which("asterisk") is None and not (ROOTFS / ".cc_ari_ready").exists()
    if needs_rootfs and shutil.which("debootstrap") is None:
        missing.append("debootstrap")
    if missing:
        say(f"installing Debian packages: {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        todo = (f"check the network and the apt sources, or install them by hand (apt-get install {' '.join(missing)}),"
                " then run `make run` again")
        with step("installing Debian packages", todo):
            sh("apt-get", "update", "-qq", quiet=True, env=env)
            sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, env=env, quiet=True)
        # Debian starts the system cluster on install; the lab has its own, so the system one is
        # left as the admin had it.
    with step("getting Asterisk", f"see the lines above (and {ROOTFS}.tmp.log if it is there); fix the cause "
              "(network? disk space?) and run `make run` again"):
        # progress on stdout as it comes; the cause of a failure is the script's last stderr line
        sh(REPO / "scripts" / "setup-asterisk.sh", stderr=subprocess.PIPE)


# ------------------------------------------------------------------------------------ secrets
def load_env() -> dict[str, str]:
    env: dict[str, str] = {}
    if ENV_FILE.exists():
        for line in ENV_FILE.read_text().splitlines():
            line = line.strip()
            if line.startswith("export "):
                line = line[len("export ") :]
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                env[k] = v.strip().strip("'\"")
    return env


def asterisk_mode() -> tuple[str, Path]:
    """('host', Path('/')) for an installed asterisk, else ('chroot', rootfs)."""
    if os.environ.get("CC_ASTERISK_FORCE_ROOTFS") or shutil.which("asterisk") is None:
        return "chroot", ROOTFS
    return "host", Path("/")


def instance_paths() -> tuple[str, Path]:
    """Asterisk's instance directory as Asterisk sees it, and as the host sees it."""
    mode, root = asterisk_mode()
    if mode == "host":
        inst = LAB / "asterisk"
        return str(inst), inst
    inst_view = f"/srv/cc_ari/{lab_tag()}"
    return inst_view, root / inst_view.lstrip("/")


def lab_tag() -> str:
    """A short name for this lab, from its path: names its system state directories."""
    return hashlib.sha256(str(LAB).encode()).hexdigest()[:10]


def state_dir() -> Path:
    return STATE_ROOT / lab_tag()


def agent_tokens(env: dict[str, str]) -> dict[str, str]:
    """One token per lab agent, bound to it (`token:agent:agentN`), derived from a generated seed so
    it stays the same across `make run`s."""
    seed = env["CC_AGENT_TOKEN_SEED"].encode()
    return {f"agent{i}": hmac.new(seed, f"agent{i}".encode(), hashlib.sha256).hexdigest()[:32]
            for i in range(1, int(env["CC_AGENT_COUNT"]) + 1)}


def write_private(path: Path, text: str) -> None:
    """Write a file only root can read, atomically."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def ensure_env() -> dict[str, str]:
    with step(f"writing {ENV_FILE}", f"check that {LAB} can be created and written by root"):
        return _ensure_env()


def _ensure_env() -> dict[str, str]:
    LAB.mkdir(parents=True, exist_ok=True)
    old = load_env()
    env: dict[str, str] = {}
    for k, v in DEFAULTS.items():
        env[k] = os.environ.get(k, old.get(k, v))
    for k in SECRETS:
        env[k] = old.get(k) or secrets.token_urlsafe(24)
    inst_view, inst_host = instance_paths()
    env.update(
        {
            "CC_ARI_USER": "cc_ari",
            "CC_AMI_USER": "cc_ari",
            "CC_ARI_URL": f"http://{env['CC_ARI_HOST']}:{env['CC_ARI_PORT']}",
            "CC_API_URL": f"http://{env['CC_HTTP_HOST']}:{env['CC_HTTP_PORT']}",
            "CC_DATABASE_URL": f"postgresql://cc:{env['CC_PG_PASSWORD']}@127.0.0.1:{env['CC_PG_PORT']}/cc",
            "CC_RECORDINGS_DIR": str(inst_host / "spool" / "recording"),
            "CC_ASTERISK_RECORDINGS_DIR": f"{inst_view}/spool/recording",
            "CC_PROMPTS_DIR": f"{inst_view}/sounds",
            "CC_CEL_LOG": str(inst_host / "log" / "cc_cel.json"),
            "CC_LOG_DIR": str(LOGS),
            "CC_STATE_DIR": str(LAB / "state"),
            "CC_CONFIG": os.environ.get("CC_CONFIG", old.get("CC_CONFIG", str(REPO / "config" / "cc_ari.toml"))),
            "CC_ASTERISK_INSTANCE": str(inst_host),
            # the lab checks live state against Asterisk every 10 s (default 30) and lets the tests
            # inject faults (lose ARI events / the ARI socket) with the admin token
            "CC_RECONCILE_SECONDS": os.environ.get("CC_RECONCILE_SECONDS", "10"),
            "CC_FAULT_INJECTION": "1",
            # more roles than the admin token: a supervisor (controls agents) and an agent (reads)
            # and one token bound to each agent (the agent desktop), listed in .lab/agent-tokens.json
            "CC_API_TOKENS": ",".join(
                [f"{env['CC_SUPERVISOR_TOKEN']}:supervisor", f"{env['CC_AGENT_TOKEN']}:agent"]
                + [f"{token}:agent:{agent}" for agent, token in agent_tokens(env).items()]),
        }
    )
    write_private(AGENT_TOKENS_FILE, json.dumps(agent_tokens(env), indent=1) + "\n")
    text = "# cc_ari lab settings and secrets, generated by scripts/lab.py. Keep private.\n"
    text += "".join(f"export {k}='{v}'\n" for k, v in sorted(env.items()))
    tmp = ENV_FILE.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(ENV_FILE)
    return env


# ------------------------------------------------------------------------- processes, ports
def proc_state(pid: int) -> str | None:
    """The state letter of /proc/<pid>/stat (R, S, D, Z, ...), None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0] if fields else None


def is_running(pid: int) -> bool:
    """A process that exists and is not a zombie (kill(pid, 0) succeeds on an unreaped zombie)."""
    return proc_state(pid) not in (None, "Z", "X")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def read_pid(pidfile: Path) -> int | None:
    """The pid on the first line of a pid file (PostgreSQL's postmaster.pid has more lines)."""
    try:
        return int(pidfile.read_text().split("\n", 1)[0].strip())
    except (OSError, ValueError):
        return None


def pid_alive(pidfile: Path, needle: str = "") -> int | None:
    """The pid in `pidfile` if that process runs (not a zombie) and its command line holds `needle`."""
    pid = read_pid(pidfile)
    if pid is None or not is_running(pid) or needle not in cmdline(pid):
        return None
    return pid


def stop_pid(pidfile: Path | None, pid: int, grace: float = 10.0) -> None:
    """SIGTERM the process group of `pid`, SIGKILL it after `grace` s; forget the pid file."""
    if is_running(pid):
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while is_running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if is_running(pid):
            for kill in (os.killpg, os.kill):
                with contextlib.suppress(OSError):
                    kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while is_running(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
    if pidfile is not None:
        pidfile.unlink(missing_ok=True)


def port_free(host: str, port: int, kind: int = socket.SOCK_STREAM) -> bool:
    """Whether a program could bind host:port now (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def require_ports_free(what: str, ports: list[tuple[str, str, str, int]]) -> None:
    """(variable, host, port, kind) each free, or a LabError naming the port and its variable."""
    for var, host, port, kind in ports:
        # A process just killed may hold its sockets a moment longer (its threads still exiting
        # while its main thread already shows as a zombie): give it a few seconds.
        if not wait_until(lambda h=host, p=int(port), k=kind: port_free(h, p, k), 5, 0.1):
            proto = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
            raise LabError(what, f"{proto} port {host}:{port} is already in use by another program",
                           f"stop that program, or pick another port: {var}=<port> make run")


def listener_pid(port: int) -> int | None:
    """The process listening on TCP `port` (from /proc), None if none is found."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{f[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    return None


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# ---------------------------------------------------------------------------------- postgres
def pg_run(*cmd: str | Path, check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    return sh("runuser", "-u", "postgres", "--", *cmd, check=check, **kw)  # type: ignore[arg-type]


def postgres_can_use(pg: Path) -> bool:
    """Whether the postgres user can reach and write the cluster in `pg` (not in a private folder)."""
    data = pg / "data"
    res = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-r", str(data / "PG_VERSION"), "-a",
                          "-w", str(data)], capture_output=True)
    return res.returncode == 0


def pg_dir(prepare: bool = False) -> Path:
    """Where this lab's PostgreSQL cluster is: /var/lib/cc_ari/<tag>/pg, or an existing cluster in the
    old place (.lab/pg) as long as the postgres user can use it. With `prepare`, make it so (move an
    old cluster the postgres user cannot reach, link .lab/pg to the system place)."""
    legacy = LAB / "pg"
    system = state_dir() / "pg"
    legacy_cluster = not legacy.is_symlink() and (legacy / "data" / "PG_VERSION").exists()
    if not prepare:
        return legacy if legacy_cluster else system
    if legacy_cluster:
        if postgres_can_use(legacy):
            return legacy
        if (system / "data" / "PG_VERSION").exists():
            raise LabError("PostgreSQL", f"the postgres user cannot reach the cluster in {legacy}, and {system} "
                           "holds another one", f"remove one of them (rm -rf {legacy}) and run `make run` again")
        say(f"moving the PostgreSQL cluster from {legacy} (the postgres user cannot reach it) to {system}")
        system.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(legacy), str(system))
        sh("chown", "-R", "postgres:postgres", system)
    state = state_dir()
    if not state.is_dir():
        STATE_ROOT.mkdir(parents=True, exist_ok=True)
        state.mkdir(mode=0o755, exist_ok=True)
    note = state / "lab"
    if not note.exists():
        note.write_text(f"{LAB}\n")  # which checkout this state belongs to
    system.mkdir(mode=0o700, exist_ok=True)
    shutil.chown(system, "postgres", "postgres")
    os.chmod(system, 0o700)
    # .lab/pg: a link to the cluster, for convenience (a failed old-style set-up may have left
    # empty directories there: those go)
    if legacy.is_symlink():
        if os.readlink(legacy) != str(system):
            legacy.unlink()
    elif legacy.is_dir():
        for d in sorted((p for p in legacy.rglob("*") if p.is_dir()), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()
        with contextlib.suppress(OSError):
            legacy.rmdir()
    if not legacy.exists() and not legacy.is_symlink():
        legacy.symlink_to(system)
    return system


def pg_ready(pg: Path, port: str) -> bool:
    """PostgreSQL accepts connections on this cluster's socket."""
    bindir = pg_bindir()
    if bindir is None or not (pg / "run").is_dir():
        return False
    res = subprocess.run([str(bindir / "pg_isready"), "-q", "-h", str(pg / "run"), "-p", port, "-t", "2"],
                         capture_output=True, timeout=10)
    return res.returncode == 0


def postmaster_pid(data: Path) -> int | None:
    """The running postmaster of `data` (its postmaster.pid, if that process runs and is a postgres)."""
    pid = read_pid(data / "postmaster.pid")
    if pid is None or not is_running(pid) or "postgres" not in cmdline(pid):
        return None
    return pid


def pg_start(env: dict[str, str]) -> None:
    bindir = pg_bindir()
    if bindir is None:
        raise LabError("PostgreSQL", "it is not installed", "run `make run`, which installs it")
    pg = pg_dir(prepare=True)
    log = pg / "postgres.log"
    with step("starting PostgreSQL", f"see {log}; fix the cause and run `make run` again"):
        _pg_start(env, bindir, pg, log)


def _pg_start(env: dict[str, str], bindir: Path, pg: Path, log: Path) -> None:
    data = pg / "data"
    sock = pg / "run"
    port = env["CC_PG_PORT"]
    if not (data / "PG_VERSION").exists():
        say(f"creating the private PostgreSQL cluster in {pg}")
        if data.exists():  # left by an initdb that failed: initdb wants it empty
            shutil.rmtree(data)
        pg_run(bindir / "initdb", "-D", data, "-U", "postgres", "--auth-local=trust",
               "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", quiet=True)
        with open(data / "postgresql.conf", "a") as f:
            f.write(
                "\n# cc_ari lab (port and socket directory are also given at each start by lab.py)\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {port}\n"
                f"unix_socket_directories = '{sock}'\n"
                "fsync = on\nlog_min_messages = warning\n"
            )
    sock.mkdir(parents=True, exist_ok=True)
    shutil.chown(sock, "postgres", "postgres")
    if not pg_ready(pg, port):
        pid = postmaster_pid(data)
        if pid is not None and not wait_until(lambda: pg_ready(pg, port), 60, 0.5):
            raise LabError("PostgreSQL", f"its postmaster (pid {pid}) runs but does not answer on {sock} "
                           f"port {port}", f"see {log}; stop it (kill {pid}) and run `make run` again")
        if pid is None:
            # dead (perhaps an unreaped zombie that still owns postmaster.pid): clear what it left
            # behind, which PostgreSQL would take for a running server
            (data / "postmaster.pid").unlink(missing_ok=True)
            for stale in sock.glob(f".s.PGSQL.{port}*"):
                stale.unlink(missing_ok=True)
            require_ports_free("starting PostgreSQL", [("CC_PG_PORT", "127.0.0.1", port, socket.SOCK_STREAM)])
            say("starting PostgreSQL")
            opts = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={shlex.quote(str(sock))}"
            pg_run(bindir / "pg_ctl", "-D", data, "-l", log, "-o", opts, "-w", "-t", "60", "start", quiet=True)
    psql = [str(bindir / "psql"), "-h", str(sock), "-p", port, "-U", "postgres",
            "-v", "ON_ERROR_STOP=1", "-qAt"]
    pw = env["CC_PG_PASSWORD"].replace("'", "''")
    exists = pg_run(*psql, "-c", "SELECT 1 FROM pg_roles WHERE rolname='cc'", capture_output=True).stdout.strip()
    verb = "ALTER" if exists else "CREATE"
    pg_run(*psql, "-c", f"{verb} ROLE cc LOGIN PASSWORD '{pw}'", quiet=True)
    if not pg_run(*psql, "-c", "SELECT 1 FROM pg_database WHERE datname='cc'", capture_output=True).stdout.strip():
        pg_run(*psql, "-c", "CREATE DATABASE cc OWNER cc", quiet=True)


def pg_stop() -> None:
    bindir = pg_bindir()
    data = pg_dir() / "data"
    if bindir is None or not (data / "postmaster.pid").exists():
        return
    if postmaster_pid(data) is None:  # dead: only its pid file is left
        (data / "postmaster.pid").unlink(missing_ok=True)
        return
    pg_run(bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop", check=False, quiet=True)


# ---------------------------------------------------------------------------------- asterisk
def render(text: str, values: dict[str, str]) -> str:
    for k, v in values.items():
        text = text.replace(f"@@{k}@@", v)
    if "@@" in text:
        start = text.index("@@")
        raise ValueError(f"unfilled template marker near {text[start:start + 40]!r}")
    return text


def agent_sections(count: int, password: str) -> str:
    out = []
    for i in range(1, count + 1):
        a = f"agent{i}"
        out.append(
            f"[{a}](agent-endpoint)\nauth = {a}\naors = {a}\ncallerid = Agent {i} <{a}>\n\n"
            f"[{a}](agent-aor)\n\n"
            f"[{a}](agent-auth)\nusername = {a}\npassword = {password}\n"
        )
    return "\n".join(out)


def fallback_routes(config: dict[str, object]) -> str:
    routes = config.get("routes", {})
    assert isinstance(routes, dict)
    lines = []
    for did, target in sorted(routes.items()):
        queue = target.get("queue")
        if queue is None:  # an IVR: in reduced mode, its default choice
            menu = config["ivr"][target["ivr"]]  # type: ignore[index]
            queue = menu["on_timeout"].get("queue", "support")
        lines.append(f"exten => {did},1,CELGenUserEvent(cc_fallback,{queue})\n"
                     f" same => n,Goto(cc-fallback-queue,{queue},1)")
    return "\n".join(lines)


def fallback_queues(config: dict[str, object]) -> str:
    """queues.conf: one app_queue queue `cc-fb-<queue>` per cc_ari queue, for the fallback dialplan.

    No static members: cc_ari adds, pauses and removes them over AMI as its agents log in, pause
    and log out (cc_ari/fallback/), so Queue() rings only agents logged in to that queue and not
    paused. rrmemory + autofill: each waiting caller rings one free agent at a time, round robin,
    and several callers are served in parallel (under ringall only the head caller rings, every
    free phone at once); one agent leg per attempt, load spread like cc_ari's longest-idle."""
    queues = config.get("queues", {})
    assert isinstance(queues, dict)
    sections = []
    for name in sorted(queues):
        sections.append(f"[cc-fb-{name}]\n"
                        "strategy = rrmemory\nautofill = yes\ntimeout = 15\nretry = 2\nringinuse = no\n"
                        "joinempty = yes\nleavewhenempty = no\nannounce-frequency = 0\n"
                        "periodic-announce-frequency = 0\nmusicclass = default\n")
    return "\n".join(sections)


def bench_queue_members(count: int) -> str:
    """Static members of the benchmarks' native queue (queues.conf [bench-native], bench/lab)."""
    return "\n".join(f"member => PJSIP/agent{i}" for i in range(1, count + 1))


def make_prompts(config: dict[str, object], inst_host: Path) -> None:
    prompts = config.get("prompts", {})
    assert isinstance(prompts, dict)
    out = inst_host / "sounds"
    out.mkdir(parents=True, exist_ok=True)
    for key, text in prompts.items():
        target = out / f"{key}.wav"
        stamp = out / f"{key}.txt"
        if target.exists() and stamp.exists() and stamp.read_text() == text:
            continue
        raw = out / f"{key}.raw.wav"
        with step(f"making the voice prompt {key!r}", "check that espeak-ng and sox work (`make run` installs "
                  "them) and that the prompt text in config/cc_ari.toml is plain text"):
            sh("espeak-ng", "-v", "en-us", "-s", "150", "-w", raw, text, quiet=True)
            # 8 kHz mono 16-bit PCM: what Asterisk plays without transcoding surprises.
            sh("sox", raw, "-r", "8000", "-c", "1", "-b", "16", target, "norm", "-3", quiet=True)
        raw.unlink()
        stamp.write_text(text)


def write_asterisk_config(env: dict[str, str]) -> tuple[str, Path]:
    with step("generating the Asterisk configuration", f"check {env['CC_CONFIG']} (`cc-ari check-config "
              f"{env['CC_CONFIG']}`) and asterisk/templates/, then run `make run` again"):
        config = tomllib.loads(Path(env["CC_CONFIG"]).read_text())
        inst_view, inst_host = instance_paths()
        for sub in ("etc", "db", "cache", "spool/recording", "run", "log", "sounds"):
            (inst_host / sub).mkdir(parents=True, exist_ok=True)
        # Asterisk's logs (CEL, messages) and the recordings hold callers' numbers and voices
        for sub in ("log", "spool/recording"):
            os.chmod(inst_host / sub, 0o750)
        return _write_asterisk_config(env, config, inst_view, inst_host)


def _write_asterisk_config(env: dict[str, str], config: dict[str, object], inst_view: str,
                           inst_host: Path) -> tuple[str, Path]:
    mode, _root = asterisk_mode()
    moddir = "/usr/lib/x86_64-linux-gnu/asterisk/modules"
    if mode == "host":
        candidates = ("/usr/lib/x86_64-linux-gnu/asterisk/modules", "/usr/lib/asterisk/modules",
                      "/usr/lib64/asterisk/modules")
        for cand in candidates:
            if Path(cand).is_dir():
                moddir = cand
                break
    values = {
        "INST": inst_view,
        "MODDIR": moddir,
        "ARI_HOST": env["CC_ARI_HOST"],
        "ARI_PORT": env["CC_ARI_PORT"],
        "ARI_USER": env["CC_ARI_USER"],
        "ARI_PASSWORD": env["CC_ARI_PASSWORD"],
        "ARI_APP": env["CC_ARI_APP"],
        "AMI_HOST": env["CC_AMI_HOST"],
        "AMI_PORT": env["CC_AMI_PORT"],
        "AMI_USER": env["CC_AMI_USER"],
        "AMI_PASSWORD": env["CC_AMI_PASSWORD"],
        "SIP_HOST": env["CC_SIP_HOST"],
        "SIP_PORT": env["CC_SIP_PORT"],
        "CARRIER_HOST": env["CC_CARRIER_HOST"],
        "CARRIER_PORT": env["CC_CARRIER_PORT"],
        "RTP_START": env["CC_RTP_START"],
        "RTP_END": env["CC_RTP_END"],
        "CEL_FILE": f"{inst_view}/log/cc_cel.json",
        "PROMPTS": f"{inst_view}/sounds",
        "RECORDINGS": f"{inst_view}/spool/recording",
        "FALLBACK_MAX_WAIT": "300",
        "AGENT_SECTIONS": agent_sections(int(env["CC_AGENT_COUNT"]), env["CC_AGENT_PASSWORD"]),
        "FALLBACK_QUEUES": fallback_queues(config),
        "FALLBACK_ROUTES": fallback_routes(config),
        "BENCH_QUEUE_MEMBERS": bench_queue_members(int(env["CC_AGENT_COUNT"])),
    }
    etc = inst_host / "etc"
    sources = [*sorted((REPO / "asterisk" / "templates").glob("*.conf")), REPO / "dialplan" / "extensions.conf"]
    for src in sources:
        dst = etc / src.name
        dst.write_text(render(src.read_text(), values))
        os.chmod(dst, 0o600)
    make_prompts(config, inst_host)
    link = LAB / "asterisk"
    if mode == "chroot":
        if (link.is_symlink() or link.exists()) and link.is_symlink():
            link.unlink()
        if not link.exists():
            link.symlink_to(inst_host)
    return inst_view, inst_host


def asterisk_cmd(inst_view: str, *args: str) -> list[str]:
    mode, root = asterisk_mode()
    conf = f"{inst_view}/etc/asterisk.conf"
    if mode == "host":
        return ["asterisk", "-C", conf, *args]
    return ["chroot", str(root), "/usr/sbin/asterisk", "-C", conf, *args]


def http_status(url: str, auth: tuple[str, str] | None = None, timeout: float = 2.0) -> int | None:
    """The HTTP status `url` answers with, None if nothing answers."""
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, TimeoutError, ValueError):
        return None


def http_ok(url: str, auth: tuple[str, str] | None = None, timeout: float = 2.0) -> bool:
    return http_status(url, auth, timeout) == 200


def tail(log: Path, lines: int = 1) -> str:
    """The last non-empty lines of a log, on one line."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    found = [ln.strip() for ln in text.splitlines() if ln.strip()][-lines:]
    return " / ".join(found)[:300]


def wait_for(what: str, check: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes] | None = None,
             log: Path | None = None, todo: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            cause = f"it exited with status {proc.returncode}"
            break
        time.sleep(0.2)
    else:
        cause = f"it did not answer within {timeout:.0f} s"
    last = tail(log) if log else ""
    if last:
        cause += f"; last log line: {last}"
    raise LabError(what, cause, todo or (f"see {log}, fix the cause and run `make run` again" if log
                                         else "run `make run` again"))


def spawn(cmd: list[str], pidfile: Path, out: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    private_logs()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.fchmod(fd, 0o640)
    with os.fdopen(fd, "ab") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, cwd=REPO)
    RUN.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(str(proc.pid))
    return proc


def private_logs() -> None:
    """The logs hold caller numbers: directory 0750, files 0640 (also those made before this rule)."""
    LOGS.mkdir(mode=0o750, parents=True, exist_ok=True)
    os.chmod(LOGS, 0o750)
    for f in LOGS.iterdir():
        if f.is_file() and not f.is_symlink():
            os.chmod(f, 0o640)


def asterisk_answers(inst_view: str) -> bool:
    """Asterisk answers on its control socket (what `asterisk -rx` talks to)."""
    try:
        res = subprocess.run(asterisk_cmd(inst_view, "-rx", "core show uptime"), capture_output=True, text=True,
                             timeout=3, stdin=subprocess.DEVNULL)
    except (subprocess.TimeoutExpired, OSError):
        return False
    return res.returncode == 0 and "uptime" in res.stdout.lower()


def asterisk_pid(inst_view: str, inst_host: Path) -> int | None:
    """The running Asterisk of this instance: the lab's pid file, else the one Asterisk writes itself."""
    for pidfile in (RUN / "asterisk.pid", inst_host / "run" / "asterisk.pid"):
        pid = pid_alive(pidfile, f"{inst_view}/etc/asterisk.conf")
        if pid is not None:
            return pid
    return None


def asterisk_start(env: dict[str, str]) -> None:
    inst_view, inst_host = write_asterisk_config(env)
    messages = inst_host / "log" / "messages.log"
    todo = f"see {LOGS / 'asterisk.out'} and {messages}, fix the cause and run `make run` again"
    with step("starting Asterisk", todo):
        _asterisk_start(env, inst_view, inst_host, todo)


def _asterisk_start(env: dict[str, str], inst_view: str, inst_host: Path, todo: str) -> None:
    ari = f"{env['CC_ARI_URL']}/ari/asterisk/info"
    auth = (env["CC_ARI_USER"], env["CC_ARI_PASSWORD"])
    pidfile = RUN / "asterisk.pid"
    proc = None

    def alive() -> bool:  # by what answers: ARI with this lab's credentials, or the control socket
        return http_ok(ari, auth) or asterisk_answers(inst_view)

    answers = alive()
    if not answers:
        pid = asterisk_pid(inst_view, inst_host)
        if pid is not None:
            # a process but no answer: still starting, or hung (then neither answers for ~10 s)
            answers = wait_until(alive, 5, 0.5)
            if not answers:
                say(f"Asterisk (pid {pid}) does not answer: stopping it")
                stop_pid(pidfile, pid, grace=3)
    if answers:
        pid = asterisk_pid(inst_view, inst_host)
        if pid is not None and read_pid(pidfile) != pid:
            pidfile.write_text(str(pid))
        # Running: pick up regenerated config without dropping calls.
        sh(*asterisk_cmd(inst_view, "-rx", "core reload"), check=False, quiet=True, timeout=30)
        sh(*asterisk_cmd(inst_view, "-rx", "dialplan reload"), check=False, quiet=True, timeout=30)
    else:
        # dead (or a zombie nobody reaped): clear what it left, which would pass for a live one
        for stale in (pidfile, inst_host / "run" / "asterisk.pid", inst_host / "run" / "asterisk.ctl"):
            stale.unlink(missing_ok=True)
        tcp, udp = socket.SOCK_STREAM, socket.SOCK_DGRAM
        require_ports_free("starting Asterisk", [
            ("CC_SIP_PORT", env["CC_SIP_HOST"], env["CC_SIP_PORT"], udp),
            ("CC_SIP_PORT", env["CC_SIP_HOST"], env["CC_SIP_PORT"], tcp),
            ("CC_ARI_PORT", env["CC_ARI_HOST"], env["CC_ARI_PORT"], tcp),
            ("CC_AMI_PORT", env["CC_AMI_HOST"], env["CC_AMI_PORT"], tcp),
        ])
        say("starting Asterisk")
        proc = spawn(asterisk_cmd(inst_view, "-f", "-n"), pidfile, LOGS / "asterisk.out")
    wait_for("starting Asterisk (ARI)", lambda: http_ok(ari, auth), 60, proc, LOGS / "asterisk.out", todo)


def asterisk_stop() -> None:
    inst_view, inst_host = instance_paths()
    pid = asterisk_pid(inst_view, inst_host)
    if asterisk_answers(inst_view):
        sh(*asterisk_cmd(inst_view, "-rx", "core stop now"), check=False, quiet=True, timeout=15)
    if pid is not None:
        stop_pid(RUN / "asterisk.pid", pid)
    (RUN / "asterisk.pid").unlink(missing_ok=True)


# ----------------------------------------------------------------------------------- service
def service_env(env: dict[str, str]) -> dict[str, str]:
    out = dict(os.environ)
    out.update(env)
    return out


def migrate(env: dict[str, str]) -> None:
    if not (VENV_BIN / "cc-ari").exists():
        raise LabError("migrating the database", f"{VENV_BIN / 'cc-ari'} is missing",
                       "run `make run` (it makes the virtualenv) rather than scripts/lab.py alone")
    with step("migrating the database", "see the message above; is PostgreSQL up (`make status`)?"):
        sh(VENV_BIN / "cc-ari", "migrate", env=service_env(env), stderr=subprocess.PIPE, timeout=120)


def service_answers(env: dict[str, str]) -> bool:
    """cc_ari answers /healthz (200 when it reaches Asterisk, 503 while it does not: alive either way)."""
    return http_status(f"{env['CC_API_URL']}/healthz") is not None


def service_start(env: dict[str, str]) -> None:
    out = LOGS / "cc_ari.out"
    todo = f"see {out} and {LOGS / 'cc_ari.jsonl'}, fix the cause and run `make run` again"
    with step("starting cc_ari", todo):
        _service_start(env, out, todo)


def _service_start(env: dict[str, str], out: Path, todo: str) -> None:
    pidfile = RUN / "cc_ari.pid"
    proc = None
    answers = service_answers(env)
    if answers:  # ... but is it this lab's cc_ari?
        owner = listener_pid(int(env["CC_HTTP_PORT"]))
        if owner is not None and owner != read_pid(pidfile):
            try:
                ours = f"CC_LOG_DIR={LOGS}".encode() in Path(f"/proc/{owner}/environ").read_bytes().split(b"\0")
            except OSError:
                ours = True
            if not ours:
                raise LabError("starting cc_ari", f"{env['CC_API_URL']} answers, but that is another program "
                               f"(pid {owner}: {cmdline(owner)[:80].strip()})",
                               "stop it, or pick another port: CC_HTTP_PORT=<port> make run")
            pidfile.write_text(str(owner))  # ours, its pid file lost
    if not answers:
        pid = pid_alive(pidfile, "cc-ari")
        if pid is not None:
            # a process but no answer: still starting, or hung
            answers = wait_until(lambda: service_answers(env), 15, 0.3)
            if not answers:
                say(f"cc_ari (pid {pid}) does not answer: stopping it")
                stop_pid(pidfile, pid, grace=10)
    if not answers:
        pidfile.unlink(missing_ok=True)
        require_ports_free("starting cc_ari", [("CC_HTTP_PORT", env["CC_HTTP_HOST"], env["CC_HTTP_PORT"],
                                                socket.SOCK_STREAM)])
        say("starting cc_ari")
        proc = spawn([str(VENV_BIN / "cc-ari"), "run"], pidfile, out, env=service_env(env))
    wait_for("starting cc_ari (/healthz)", lambda: http_ok(f"{env['CC_API_URL']}/healthz"), 60, proc, out, todo)


def service_stop() -> None:
    pidfile = RUN / "cc_ari.pid"
    pid = pid_alive(pidfile, "cc-ari")
    if pid is not None:
        stop_pid(pidfile, pid, grace=15.0)
    pidfile.unlink(missing_ok=True)


# -------------------------------------------------------------------------------------- main
def run() -> None:
    env = ensure_env()
    with step(f"preparing {LAB}", f"check that {LAB} is writable by root"):
        for d in (RUN, LAB / "state"):
            d.mkdir(parents=True, exist_ok=True)
        private_logs()
    pg_start(env)
    migrate(env)
    asterisk_start(env)
    service_start(env)
    with contextlib.suppress(BrokenPipeError):
        print(summary(env), flush=True)


def summary(env: dict[str, str]) -> str:
    inst_host = env["CC_ASTERISK_INSTANCE"]
    return (
        f"""
cc_ari lab is up.
  dashboard / API   {env['CC_API_URL']}   (token: CC_API_TOKEN in {ENV_FILE})
  ARI               {env['CC_ARI_URL']}/ari   AMI 127.0.0.1:{env['CC_AMI_PORT']}
  PostgreSQL        {env['CC_DATABASE_URL'].split('@')[1]}   (report.calls, report.legs)
  recordings        {env['CC_RECORDINGS_DIR']}
  Asterisk config   {inst_host}/etc     logs: {LOGS}

Register a softphone as an agent: SIP server 127.0.0.1:{env['CC_SIP_PORT']} (UDP or TCP),
user agent1 .. agent{env['CC_AGENT_COUNT']}, password: CC_AGENT_PASSWORD in {ENV_FILE}.
Log it in:  . {ENV_FILE}; curl -H "Authorization: Bearer $CC_API_TOKEN" \\
              -d '{{"queues":["support"]}}' $CC_API_URL/api/agents/agent1/login
Call in as the carrier (from 127.0.0.2): 5000 = IVR, 5001 = support queue.
Stop everything: make stop
"""
    )


def stop() -> None:
    service_stop()
    asterisk_stop()
    pg_stop()
    say("stopped")


def clean() -> None:
    """Stop, then remove the lab and its state outside the checkout (cluster, Asterisk instance)."""
    stop()
    _inst_view, inst_host = instance_paths()
    mode, root = asterisk_mode()
    doomed = [state_dir(), LAB]
    if mode == "chroot" and inst_host.parent == root / "srv" / "cc_ari":
        doomed.append(inst_host)
    for d in doomed:
        if d.is_dir() and not d.is_symlink():
            shutil.rmtree(d)
            say(f"removed {d}")


def status() -> None:
    env = load_env()
    if not env:
        print(f"no lab in {LAB} (make run)")
        return
    inst_view, inst_host = instance_paths()
    up = asterisk_answers(inst_view)
    pid = asterisk_pid(inst_view, inst_host)
    print(f"asterisk: {'running' if up else 'stopped'}{f' pid {pid}' if up and pid else ''}")
    pg = pg_dir()
    print(f"postgres: {'running' if pg_ready(pg, env['CC_PG_PORT']) else 'stopped'} ({pg})")
    code = http_status(f"{env['CC_API_URL']}/healthz")
    pid = pid_alive(RUN / "cc_ari.pid", "cc-ari")
    state = "stopped" if code is None else ("running" if code == 200 else f"running, unhealthy (healthz {code})")
    print(f"cc_ari: {state}{f' pid {pid}' if code is not None and pid else ''}")


def main(argv: list[str]) -> None:
    if os.geteuid() != 0:
        raise SystemExit("lab: must run as root: it manages a PostgreSQL cluster and Asterisk — run `sudo make run`")
    try:
        dispatch(argv)
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("lab: interrupted — run the same command again to finish", file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    except Exception as exc:  # never a traceback for a set-up failure (CC_LAB_DEBUG=1 shows it)
        if os.environ.get("CC_LAB_DEBUG"):
            raise
        cmd = argv[1] if len(argv) > 1 else "status"
        print(f"lab: {cmd}: {cause_of(exc)} — fix the cause and run it again (CC_LAB_DEBUG=1 shows the "
              "traceback)", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def dispatch(argv: list[str]) -> None:
    cmd = argv[1] if len(argv) > 1 else "status"
    if cmd == "deps":
        deps()
    elif cmd == "run":
        run()
    elif cmd == "stop":
        stop()
    elif cmd == "clean":
        clean()
    elif cmd == "status":
        status()
    elif cmd == "service-stop":
        service_stop()
    elif cmd == "service-start":
        service_start(ensure_env())
    elif cmd == "service-restart":  # pick up new code; callers are rescued, talks adopted
        service_stop()
        service_start(ensure_env())
    elif cmd == "asterisk-restart":  # failure tests: Asterisk goes away and comes back
        env = ensure_env()
        asterisk_stop()
        asterisk_start(env)
    elif cmd == "pg-stop":  # failure tests: a database outage
        pg_stop()
    elif cmd == "pg-start":
        pg_start(ensure_env())
    elif cmd == "env":
        print(json.dumps(ensure_env(), indent=2))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
