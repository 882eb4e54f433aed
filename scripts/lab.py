#!/usr/bin/env python3
"""The lab: cc_ari's default, self-contained installation (see README "The lab").

    lab.py deps     install the Debian packages the lab needs (only what is missing)
    lab.py run      set up and start PostgreSQL, Asterisk and cc_ari, detached; returns when
                    all three answer
    lab.py stop     stop all three
    lab.py status   say what runs
    lab.py service-stop / service-start   only the cc_ari service (used by fallback tests)

Everything is idempotent. Secrets are generated on first run into .lab/env (mode 0600).
Stdlib only: it runs before the virtualenv exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB = Path(os.environ.get("CC_LAB_DIR", REPO / ".lab")).resolve()
ENV_FILE = LAB / "env"
RUN = LAB / "run"
LOGS = LAB / "logs"
PG_DIR = LAB / "pg"
ROOTFS = Path(os.environ.get("CC_ASTERISK_ROOTFS", "/var/cache/cc_ari/asterisk-rootfs"))
VENV_BIN = REPO / ".venv" / "bin"

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
SECRETS = ("CC_API_TOKEN", "CC_SUPERVISOR_TOKEN", "CC_AGENT_TOKEN",
           "CC_AGENT_PASSWORD", "CC_ARI_PASSWORD", "CC_AMI_PASSWORD", "CC_PG_PASSWORD")

DEBIAN_PACKAGES = {
    # command that proves it is there -> package
    "sipp": "sip-tester",
    "espeak-ng": "espeak-ng",
    "sox": "sox",
}


def say(msg: str) -> None:
    print(f"lab: {msg}", flush=True)


def sh(*cmd: str | Path, check: bool = True, quiet: bool = False, **kw: object) -> subprocess.CompletedProcess[str]:
    args = [str(c) for c in cmd]
    if quiet:
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
    return subprocess.run(args, check=check, text=True, **kw)  # type: ignore[call-overload,no-any-return]


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
        sh("apt-get", "update", "-qq", quiet=True, env=env)
        sh("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, env=env, stdout=subprocess.DEVNULL)
        if "postgresql" in missing:
            # Debian starts the system cluster on install; the lab has its own, so leave the
            # system one as the admin had it (stopped if it was not wanted).
            pass
    sh(REPO / "scripts" / "setup-asterisk.sh")


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
    tag = hashlib.sha256(str(LAB).encode()).hexdigest()[:10]
    inst_view = f"/srv/cc_ari/{tag}"
    return inst_view, root / inst_view.lstrip("/")


def ensure_env() -> dict[str, str]:
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
            "CC_API_TOKENS": f"{env['CC_SUPERVISOR_TOKEN']}:supervisor,{env['CC_AGENT_TOKEN']}:agent",
        }
    )
    text = "# cc_ari lab settings and secrets, generated by scripts/lab.py. Keep private.\n"
    text += "".join(f"export {k}='{v}'\n" for k, v in sorted(env.items()))
    tmp = ENV_FILE.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(ENV_FILE)
    return env


# ---------------------------------------------------------------------------------- postgres
def pg_run(*cmd: str | Path, check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
    return sh("runuser", "-u", "postgres", "--", *cmd, check=check, **kw)


def pg_start(env: dict[str, str]) -> None:
    bindir = pg_bindir()
    if bindir is None:
        raise SystemExit("lab: PostgreSQL is not installed (run `make run`, which installs it)")
    data = PG_DIR / "data"
    sock = PG_DIR / "run"
    if not (data / "PG_VERSION").exists():
        say("creating the private PostgreSQL cluster")
        PG_DIR.mkdir(parents=True, exist_ok=True)
        shutil.chown(PG_DIR, "postgres", "postgres")
        pg_run(bindir / "initdb", "-D", data, "-U", "postgres", "--auth-local=trust",
               "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", quiet=True)
        with open(data / "postgresql.conf", "a") as f:
            f.write(
                "\n# cc_ari lab\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {env['CC_PG_PORT']}\n"
                f"unix_socket_directories = '{sock}'\n"
                "fsync = on\nlog_min_messages = warning\n"
            )
    sock.mkdir(parents=True, exist_ok=True)
    shutil.chown(sock, "postgres", "postgres")
    status = pg_run(bindir / "pg_ctl", "-D", data, "status", check=False, quiet=True)
    if status.returncode != 0:
        pg_run(bindir / "pg_ctl", "-D", data, "-l", PG_DIR / "postgres.log", "-w", "-t", "60", "start", quiet=True)
    psql = [str(bindir / "psql"), "-h", str(sock), "-p", env["CC_PG_PORT"], "-U", "postgres",
            "-v", "ON_ERROR_STOP=1", "-qAt"]
    pw = env["CC_PG_PASSWORD"].replace("'", "''")
    exists = pg_run(*psql, "-c", "SELECT 1 FROM pg_roles WHERE rolname='cc'", capture_output=True).stdout.strip()
    verb = "ALTER" if exists else "CREATE"
    pg_run(*psql, "-c", f"{verb} ROLE cc LOGIN PASSWORD '{pw}'", quiet=True)
    if not pg_run(*psql, "-c", "SELECT 1 FROM pg_database WHERE datname='cc'", capture_output=True).stdout.strip():
        pg_run(*psql, "-c", "CREATE DATABASE cc OWNER cc", quiet=True)


def pg_stop() -> None:
    bindir = pg_bindir()
    data = PG_DIR / "data"
    if bindir and (data / "postmaster.pid").exists():
        pg_run(bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop", check=False, quiet=True)


# ---------------------------------------------------------------------------------- asterisk
def render(text: str, values: dict[str, str]) -> str:
    for k, v in values.items():
        text = text.replace(f"@@{k}@@", v)
    if "@@" in text:
        start = text.index("@@")
        raise SystemExit(f"lab: unfilled template marker near {text[start:start + 40]!r}")
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
        sh("espeak-ng", "-v", "en-us", "-s", "150", "-w", raw, text, quiet=True)
        # 8 kHz mono 16-bit PCM: what Asterisk plays without transcoding surprises.
        sh("sox", raw, "-r", "8000", "-c", "1", "-b", "16", target, "norm", "-3", quiet=True)
        raw.unlink()
        stamp.write_text(text)


def write_asterisk_config(env: dict[str, str]) -> tuple[str, Path]:
    config = tomllib.loads(Path(env["CC_CONFIG"]).read_text())
    inst_view, inst_host = instance_paths()
    for sub in ("etc", "db", "cache", "spool/recording", "run", "log", "sounds"):
        (inst_host / sub).mkdir(parents=True, exist_ok=True)
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
        "QUEUE_MEMBERS": "\n".join(f"member => PJSIP/agent{i}" for i in range(1, int(env["CC_AGENT_COUNT"]) + 1)),
        "FALLBACK_ROUTES": fallback_routes(config),
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


def http_ok(url: str, auth: tuple[str, str] | None = None, timeout: float = 2.0) -> bool:
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, TimeoutError):
        return False


def pid_alive(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def wait_for(what: str, check: object, timeout: float, proc: subprocess.Popen[bytes] | None = None,
             log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = ""
    if log and log.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
    raise SystemExit(f"lab: {what} did not come up\n{tail}")


def spawn(cmd: list[str], pidfile: Path, out: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    out.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640))
    with open(out, "ab") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, cwd=REPO)
    pidfile.write_text(str(proc.pid))
    return proc


def asterisk_start(env: dict[str, str]) -> None:
    inst_view, _inst_host = write_asterisk_config(env)
    ari = f"{env['CC_ARI_URL']}/ari/asterisk/info"
    auth = (env["CC_ARI_USER"], env["CC_ARI_PASSWORD"])
    pidfile = RUN / "asterisk.pid"
    proc = None
    if pid_alive(pidfile):
        # Running: pick up regenerated config without dropping calls.
        sh(*asterisk_cmd(inst_view, "-rx", "core reload"), check=False, quiet=True)
        sh(*asterisk_cmd(inst_view, "-rx", "dialplan reload"), check=False, quiet=True)
    else:
        say("starting Asterisk")
        proc = spawn(asterisk_cmd(inst_view, "-f", "-n"), pidfile, LOGS / "asterisk.out")
    wait_for("Asterisk (ARI)", lambda: http_ok(ari, auth), 60, proc, LOGS / "asterisk.out")


def asterisk_stop() -> None:
    pidfile = RUN / "asterisk.pid"
    pid = pid_alive(pidfile)
    if pid is None:
        return
    inst_view, _ = instance_paths()
    sh(*asterisk_cmd(inst_view, "-rx", "core stop now"), check=False, quiet=True, timeout=15)
    stop_pid(pidfile, pid)


def stop_pid(pidfile: Path, pid: int, grace: float = 10.0) -> None:
    deadline = time.monotonic() + grace
    sent = False
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        if not sent:
            try:
                os.killpg(pid, signal.SIGTERM)
            except OSError:
                os.kill(pid, signal.SIGTERM)
            sent = True
        time.sleep(0.1)
    else:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------- service
def service_env(env: dict[str, str]) -> dict[str, str]:
    out = dict(os.environ)
    out.update(env)
    return out


def migrate(env: dict[str, str]) -> None:
    sh(VENV_BIN / "cc-ari", "migrate", env=service_env(env))


def service_start(env: dict[str, str]) -> None:
    pidfile = RUN / "cc_ari.pid"
    proc = None
    if not pid_alive(pidfile):
        say("starting cc_ari")
        proc = spawn([str(VENV_BIN / "cc-ari"), "run"], pidfile, LOGS / "cc_ari.out", env=service_env(env))
    wait_for("cc_ari", lambda: http_ok(f"{env['CC_API_URL']}/healthz"), 60, proc, LOGS / "cc_ari.out")


def service_stop() -> None:
    pidfile = RUN / "cc_ari.pid"
    pid = pid_alive(pidfile)
    if pid is not None:
        stop_pid(pidfile, pid, grace=15.0)


# -------------------------------------------------------------------------------------- main
def run() -> None:
    env = ensure_env()
    for d in (RUN, LOGS, LAB / "state"):
        d.mkdir(parents=True, exist_ok=True)
    os.chmod(LOGS, 0o750)  # logs hold caller numbers
    for f in LOGS.glob("*"):
        if f.is_file():
            os.chmod(f, 0o640)
    pg_start(env)
    migrate(env)
    asterisk_start(env)
    service_start(env)
    inst_host = env["CC_ASTERISK_INSTANCE"]
    print(
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
""",
        flush=True,
    )


def stop() -> None:
    service_stop()
    asterisk_stop()
    pg_stop()
    say("stopped")


def status() -> None:
    for name in ("asterisk", "cc_ari"):
        pid = pid_alive(RUN / f"{name}.pid")
        print(f"{name}: {'running pid ' + str(pid) if pid else 'stopped'}")
    print(f"postgres: {'running' if (PG_DIR / 'data' / 'postmaster.pid').exists() else 'stopped'}")


def main(argv: list[str]) -> None:
    if os.geteuid() != 0:
        raise SystemExit("lab: run as root (it manages a PostgreSQL cluster and Asterisk)")
    cmd = argv[1] if len(argv) > 1 else "status"
    if cmd == "deps":
        deps()
    elif cmd == "run":
        run()
    elif cmd == "stop":
        stop()
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
