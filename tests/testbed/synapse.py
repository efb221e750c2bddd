"""A real Synapse homeserver for tests: cached install, generated config, users by shared secret.

Synapse lives in its own venv (it pins its own dependencies); the install is reused across runs and
guarded by a lock file, so two test sessions starting at once never build it twice or half-way.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hub.sim.serve import free_port

from . import cache_root

READY_MARKER = ".sovhub-ready"


def base_python() -> str:
    """The interpreter the hub's venv was made from: Synapse gets a venv of its own from it."""
    for name in ("python3", f"python{sys.version_info.major}.{sys.version_info.minor}"):
        candidate = Path(sys.base_prefix) / "bin" / name
        if candidate.exists():
            return str(candidate)
    return shutil.which("python3") or "python3"


def install_synapse(venv: Path | None = None, *, pip_args: tuple[str, ...] = ()) -> Path:
    """Install matrix-synapse into `venv` once; idempotent and safe when sessions race (flock)."""
    venv = venv or cache_root() / "synapse-venv"
    venv.parent.mkdir(parents=True, exist_ok=True)
    marker = venv / READY_MARKER
    if marker.exists():
        return venv
    lock_path = venv.parent / (venv.name + ".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second session waits here for the first one's install
        try:
            if marker.exists():
                return venv
            if venv.exists():
                shutil.rmtree(venv)  # a half-built venv from an interrupted run
            log = venv.parent / (venv.name + ".install.log")
            with open(log, "w") as out:
                for cmd in (
                    [base_python(), "-m", "venv", str(venv)],
                    [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q",
                     "matrix-synapse", *pip_args],
                ):
                    rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode
                    if rc != 0:
                        tail = log.read_text(errors="replace")[-3000:]
                        raise RuntimeError(f"installing Synapse failed ({' '.join(cmd)}):\n{tail}")
            marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return venv


@dataclass(frozen=True)
class MatrixUser:
    user_id: str
    localpart: str
    password: str
    access_token: str = field(default="", repr=False)


def _signing_key() -> str:
    """An ed25519 signing key in Synapse's file format (`ed25519 <version> <unpadded b64 seed>`)."""
    seed = base64.b64encode(os.urandom(32)).decode().rstrip("=")
    return f"ed25519 a_{secrets.token_hex(2)} {seed}\n"


def write_config(workdir: Path, port: int, shared_secret: str) -> Path:
    """Write homeserver.yaml + log config for a loopback-only, rate-limit-free test server."""
    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "signing.key").write_text(_signing_key())
    log_file = workdir / "homeserver.log"
    log_config = {
        "version": 1,
        "formatters": {"precise": {"format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - "
                                             "%(request)s - %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "formatter": "precise",
                              "filename": str(log_file), "encoding": "utf8"}},
        "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
        "root": {"level": "INFO", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }
    (workdir / "log.yaml").write_text(yaml.safe_dump(log_config))
    big = {"per_second": 10000, "burst_count": 100000}
    config = {
        "server_name": "localhost",
        "public_baseurl": f"http://127.0.0.1:{port}/",
        "pid_file": str(workdir / "homeserver.pid"),
        "listeners": [{
            "port": port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
            "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}],
        }],
        "database": {"name": "sqlite3", "args": {"database": str(workdir / "homeserver.db")}},
        "log_config": str(workdir / "log.yaml"),
        "media_store_path": str(workdir / "media"),
        "max_upload_size": "50M",
        "registration_shared_secret": shared_secret,
        "enable_registration": False,
        "report_stats": False,
        "macaroon_secret_key": secrets.token_hex(16),
        "form_secret": secrets.token_hex(16),
        "signing_key_path": str(workdir / "signing.key"),
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "presence": {"enabled": False},
        "url_preview_enabled": False,
        "federation_domain_whitelist": [],
        "allow_public_rooms_over_federation": False,
        "rc_message": big,
        "rc_registration": big,
        "rc_registration_token_validity": big,
        "rc_login": {"address": big, "account": big, "failed_attempts": big},
        "rc_admin_redaction": big,
        "rc_joins": {"local": big, "remote": big},
        "rc_joins_per_room": big,
        "rc_3pid_validation": big,
        "rc_invites": {"per_room": big, "per_user": big, "per_issuer": big},
        "rc_third_party_invite": big,
        "rc_media_create": big,
        "rc_federation": {"window_size": 1000, "sleep_limit": 1000, "sleep_delay": 1,
                          "reject_limit": 1000, "concurrent": 100},
        "rc_room_creation": big,
        "rc_reports": big,
        "rc_delayed_event_mgmt": big,
        "rc_presence": {"per_user": big},
        "rc_key_requests": big,
    }
    path = workdir / "homeserver.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class SynapseServer:
    """One running homeserver; `register()` makes users through the shared-secret admin API."""

    server_name = "localhost"

    def __init__(self, workdir: Path, venv: Path | None = None) -> None:
        self.workdir = workdir
        self.venv = venv
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._secret = secrets.token_hex(16)
        self.proc: subprocess.Popen | None = None
        self.admin: MatrixUser
        self.bot: MatrixUser
        self.human: MatrixUser

    @property
    def log_path(self) -> Path:
        return self.workdir / "homeserver.log"

    def log_tail(self, chars: int = 4000) -> str:
        parts = []
        for path in (self.log_path, self.workdir / "stdout.log"):
            if path.exists():
                parts.append(f"--- {path.name} ---\n" + path.read_text(errors="replace")[-chars:])
        return "\n".join(parts) or "(no Synapse log)"

    def start(self, timeout: float = 90.0) -> None:
        venv = self.venv or install_synapse()
        config = write_config(self.workdir, self.port, self._secret)
        out = open(self.workdir / "stdout.log", "w")
        self.proc = subprocess.Popen(
            [str(venv / "bin" / "python"), "-m", "synapse.app.homeserver", "-c", str(config)],
            cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Synapse exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Synapse not healthy after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.1)
        self.admin = self.register("admin", admin=True)
        self.bot = self.register("sovbot")
        self.human = self.register("alice")

    def register(self, localpart: str, password: str | None = None, admin: bool = False) -> MatrixUser:
        """Create a user with the shared-secret admin API (HMAC-SHA1 over nonce/user/password/admin)."""
        password = password or secrets.token_urlsafe(12)
        endpoint = f"{self.url}/_synapse/admin/v1/register"
        with httpx.Client(timeout=30) as http:
            nonce = http.get(endpoint).raise_for_status().json()["nonce"]
            mac = hmac.new(self._secret.encode(), digestmod=hashlib.sha1)
            for part in (nonce, localpart, password):
                mac.update(part.encode())
                mac.update(b"\x00")
            mac.update(b"admin" if admin else b"notadmin")
            resp = http.post(endpoint, json={
                "nonce": nonce, "username": localpart, "password": password, "admin": admin,
                "mac": mac.hexdigest(),
            })
        if resp.status_code != 200:
            raise RuntimeError(f"registering {localpart} failed: {resp.status_code} {resp.text}\n"
                               f"{self.log_tail(1500)}")
        body = resp.json()
        return MatrixUser(body["user_id"], localpart, password, body.get("access_token", ""))

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL if it does not go within 10 s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
