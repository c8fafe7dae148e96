"""A Matrix Synapse homeserver for the comparison in ``synapse.py``: installed, configured, run.

- ``ensure_synapse``: ``matrix-synapse==PIN`` from PyPI in its own
  virtualenv (default ``.bench-venv/synapse``, git-ignored), installed the
  first time; the product never depends on it;
- ``Synapse``: a homeserver on 127.0.0.1 with a generated configuration
  (its own folder; SQLite there, or a temporary PostgreSQL database), rate
  limits out of reach, presence, user directory and URL previews off, no
  federation; stopped (and its database dropped) by ``stop``;
- ``register``: a user through the shared-secret admin API.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import feed  # noqa: E402  (free ports, progress)

REPO = Path(__file__).resolve().parents[2]
#: The Synapse release measured: it installs on Python 3.11 from PyPI.
PIN = "1.163.2"
#: Synapse's PostgreSQL driver (``--database-url``), the build the project's own venv uses.
PSYCOPG2 = "psycopg2-binary==2.9.13"
DEFAULT_VENV = REPO / ".bench-venv" / "synapse"
#: Far above anything the benchmark does (Synapse ignores keys it does not know).
UNLIMITED = {"per_second": 1_000_000, "burst_count": 1_000_000}


def ensure_synapse(venv: Path, postgres: bool) -> Path:
    """The virtualenv's Python with ``matrix-synapse==PIN`` (and ``PSYCOPG2`` for PostgreSQL),
    installed there the first time."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import synapse; print(synapse.__version__.split()[0])"]
    found = None
    if python.exists():
        found = subprocess.run(check, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if found is None or found.returncode != 0 or found.stdout.strip() != PIN:
        feed.progress(f"installing matrix-synapse=={PIN} into {venv} (once; a few minutes)")
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        install = [str(python), "-m", "pip", "install", "--quiet", f"matrix-synapse=={PIN}"]
        subprocess.run(install, check=True, stdin=subprocess.DEVNULL)
        found = subprocess.run(check, capture_output=True, text=True, check=True)
        if found.stdout.strip() != PIN:
            raise RuntimeError(f"{venv} has Synapse {found.stdout.strip()}, not {PIN}")
    has_driver = [str(python), "-c", "import psycopg2"]
    if postgres and subprocess.run(has_driver, capture_output=True).returncode != 0:
        feed.progress(f"installing {PSYCOPG2} into {venv} (Synapse's PostgreSQL driver)")
        install = [str(python), "-m", "pip", "install", "--quiet", PSYCOPG2]
        subprocess.run(install, check=True, stdin=subprocess.DEVNULL)
    return python


def pg_statement(server: str, statement: str) -> None:
    """One statement on the PostgreSQL server, outside a transaction (CREATE/DROP DATABASE)."""
    import psycopg2

    connection = psycopg2.connect(server)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


@dataclass
class Synapse:
    """A Synapse homeserver on 127.0.0.1 with its own folder, configuration and database:
    SQLite in the folder, or a temporary database on the ``pg_server`` PostgreSQL server."""

    python: Path
    folder: Path
    pg_server: str | None = None
    port: int = field(default_factory=feed.free_port)
    secret: str = field(default_factory=lambda: secrets.token_hex(32))
    server: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "homeserver.log"

    def configure(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        logging = {
            "version": 1,
            "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "plain",
                    "filename": str(self.log),
                }
            },
            "root": {"level": "WARNING", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
        (self.folder / "log.yaml").write_text(json.dumps(logging))
        config = {
            "server_name": "bench.localhost",
            "pid_file": str(self.folder / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": self.database(),
            "log_config": str(self.folder / "log.yaml"),
            "media_store_path": str(self.folder / "media"),
            "signing_key_path": str(self.folder / "signing.key"),
            "registration_shared_secret": self.secret,
            "macaroon_secret_key": secrets.token_hex(32),
            "form_secret": secrets.token_hex(32),
            "report_stats": False,
            "enable_metrics": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "url_preview_enabled": False,
            "presence": {"enabled": False},
            "user_directory": {"enabled": False},
            "bcrypt_rounds": 4,
            "rc_message": UNLIMITED,
            "rc_registration": UNLIMITED,
            "rc_login": {"address": UNLIMITED, "account": UNLIMITED, "failed_attempts": UNLIMITED},
            "rc_joins": {"local": UNLIMITED, "remote": UNLIMITED},
            "rc_joins_per_room": UNLIMITED,
            "rc_invites": {"per_room": UNLIMITED, "per_user": UNLIMITED, "per_issuer": UNLIMITED},
            "rc_room_creation": UNLIMITED,
            "rc_presence": {"per_user": UNLIMITED},
        }
        path = self.folder / "homeserver.yaml"
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        return path

    @property
    def pg_name(self) -> str:
        return f"synapse_bench_{os.getpid()}_{self.port}"

    def database(self) -> dict[str, Any]:
        if self.pg_server is None:
            return {"name": "sqlite3", "args": {"database": str(self.folder / "homeserver.db")}}
        # Synapse wants the C collation: a database of its own, made from template0
        pg_statement(
            self.pg_server,
            f"CREATE DATABASE \"{self.pg_name}\" TEMPLATE template0 ENCODING 'UTF8' "
            "LC_COLLATE 'C' LC_CTYPE 'C'",
        )
        parts = urlsplit(self.pg_server)
        args: dict[str, str | int | None] = {
            "user": parts.username,
            "password": parts.password,
            "host": parts.hostname,
            "port": parts.port or 5432,
            "database": self.pg_name,
            "cp_min": 5,
            "cp_max": 10,
        }
        return {"name": "psycopg2", "args": {k: v for k, v in args.items() if v is not None}}

    def start(self) -> None:
        config = self.configure()
        with (self.folder / "stdout.log").open("wb") as out:
            self.server = subprocess.Popen(
                [str(self.python), "-m", "synapse.app.homeserver", "-c", str(config)],
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120  # the first start creates the database
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"Synapse did not start:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for path in (self.folder / "stdout.log", self.log):
            with contextlib.suppress(OSError):
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server = None
        if self.pg_server is not None:
            with contextlib.suppress(Exception):  # never made, or already gone
                pg_statement(self.pg_server, f'DROP DATABASE IF EXISTS "{self.pg_name}"')


async def register(client: httpx.AsyncClient, secret: str, name: str) -> str:
    """A user through the shared-secret admin API; their access token."""
    nonce = (await client.get("/_synapse/admin/v1/register")).json()["nonce"]
    password = secrets.token_hex(12)
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    for part in (nonce, name, password):
        mac.update(part.encode() + b"\x00")
    mac.update(b"notadmin")
    body = {"nonce": nonce, "username": name, "password": password, "admin": False}
    response = await client.post(
        "/_synapse/admin/v1/register", json={**body, "mac": mac.hexdigest()}
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
