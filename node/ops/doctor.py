"""``carnet doctor``: check a deployment and say how to fix what is wrong.

Each check gives one line: ✓ (fine), ! (a warning: works, but act soon) or
✗ (broken), with a fix hint.  Rules: the doctor only *reads* (it never
migrates, creates or repairs anything) and contacts nothing but the node's
own configured ``public_url`` (its ``/healthz`` and node document), through
the node's own ``federation_connect`` route when it has one (the compose demo:
inside a container the public name is not this node, the route is how the
other schools reach it): the
clock is compared with the ``Date`` that answer carries, and with
``timedatectl`` when the machine has it.
"""

from __future__ import annotations

import email.utils
import shutil
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from federation.errors import NodeDocumentError
from federation.nodedoc import verify_node_document
from federation.runtime.client import DOCUMENT_PATH
from node.config import ConfigError, NodeConfig, load_config
from node.datafolder import SECRET_FILE, VAPID_KEY_FILE, DataFolderError, NodeKeys, load_keys
from node.ops.common import is_postgres, redacted, sqlite_path
from node.storage.db import make_database
from node.storage.migrations import available_migrations

OK, WARN, FAIL = "✓", "!", "✗"
#: Below this much free space on the data folder's disk, a warning.
LOW_DISK = 1 << 30
#: Seconds of difference with the public URL's clock that fail the check: signed
#: federation requests are refused beyond 5 minutes, codes expire by the clock.
CLOCK_TOLERANCE = 30.0


@dataclass(frozen=True)
class Check:
    status: str
    what: str
    hint: str = ""

    def line(self) -> str:
        return f"{self.status} {self.what}" + (f"\n    → {self.hint}" if self.hint else "")


def _config(data_dir: Path) -> tuple[NodeConfig | None, Check]:
    try:
        config = load_config({"data_dir": str(data_dir)})
    except ConfigError as error:
        return None, Check(FAIL, f"configuration: {error}", f"edit {data_dir / 'carnet.toml'}")
    if not (config.data_dir / "carnet.toml").is_file():
        return config, Check(
            FAIL, f"no carnet.toml in {config.data_dir}", f"run `carnet init --data {data_dir}`"
        )
    return config, Check(OK, f"configuration valid ({config.school_name}, {config.public_url})")


def _mode_problems(folder: Path) -> list[str]:
    problems = []
    if stat.S_IMODE(folder.stat().st_mode) & 0o077:
        problems.append(f"chmod 700 {folder}")
    for path in sorted(folder.iterdir()):
        secret = path.name in (SECRET_FILE, VAPID_KEY_FILE) or (
            path.name.startswith("node-signing.") and path.name.endswith(".key")
        )
        if secret and path.is_file() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            problems.append(f"chmod 600 {path}")
    return problems


def _keys(config: NodeConfig) -> tuple[NodeKeys | None, list[Check]]:
    try:
        keys = load_keys(config.data_dir)
    except (DataFolderError, PermissionError) as error:
        return None, [Check(FAIL, f"keys: {error}", "restore the key files from the backup")]
    checks = [Check(OK, "keys readable (node secret, signing key, VAPID key)")]
    problems = _mode_problems(config.data_dir)
    if problems:
        checks.append(
            Check(
                FAIL,
                "the data folder or key files are readable by other users",
                "; ".join(problems),
            )
        )
    else:
        checks.append(Check(OK, "data folder 0700 and key files 0600"))
    return keys, checks


def _database(config: NodeConfig) -> Check:
    url = config.resolved_database_url
    latest = available_migrations()[-1].version
    if not is_postgres(url) and not sqlite_path(url).is_file():
        # connecting would create an empty file: the doctor only reads
        return Check(FAIL, f"no database at {sqlite_path(url)}", "restore it, or run `carnet init`")
    try:
        db: Any = make_database(url)  # peewee is untyped
        with db.connection_context():
            if not db.table_exists("schema_version"):
                return Check(
                    FAIL,
                    f"database {redacted(url)} has no Carnet schema",
                    "run `carnet admin migrate`",
                )
            row = db.execute_sql("SELECT MAX(version) FROM schema_version").fetchone()
        if hasattr(db, "close_all"):
            db.close_all()
    except Exception as error:  # peewee/psycopg2/sqlite3: unreachable, refused, unreadable
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return Check(
            FAIL,
            f"database {redacted(url)} unreachable: {first}",
            "check database_url, that PostgreSQL runs and accepts this user",
        )
    version = int(row[0] or 0)
    if version < latest:
        return Check(
            FAIL,
            f"database at schema version {version}, this release needs {latest}",
            "run `carnet admin migrate` (or restart `carnet serve`, which migrates)",
        )
    if version > latest:
        return Check(
            FAIL,
            f"database at schema version {version}, newer than this release ({latest})",
            "install the newer Carnet release again",
        )
    return Check(OK, f"database reachable, migrations current (version {version})")


def _disk(config: NodeConfig) -> Check:
    free = shutil.disk_usage(config.data_dir).free
    text = f"{free / (1 << 30):.1f} GiB free on the data folder's disk"
    if free < LOW_DISK:
        return Check(
            WARN, text, "free some space or grow the disk: attachments and backups need it"
        )
    return Check(OK, text)


def _timedatectl() -> Check | None:
    """What systemd says of NTP, or None on a machine without it (a container)."""
    command = shutil.which("timedatectl")
    if command is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603  (timedatectl from PATH, fixed arguments)
            [command, "show", "--property=NTPSynchronized", "--value"],
            capture_output=True, text=True, timeout=5, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    answer = done.stdout.strip()
    if done.returncode != 0 or answer not in ("yes", "no"):
        return None
    if answer == "no":
        return Check(FAIL, "clock not synchronized (timedatectl)", "sudo timedatectl set-ntp true")
    return Check(OK, "clock synchronized (timedatectl)")


def _clock_from(response: httpx.Response, sent: float, received: float) -> Check:
    date = response.headers.get("date")
    parsed = email.utils.parsedate_to_datetime(date) if date else None
    if parsed is None:
        return Check(WARN, "clock not compared: the public URL sends no Date header")
    # the Date header has whole seconds: compare with the middle of the exchange
    offset = parsed.timestamp() - (sent + received) / 2
    if abs(offset) > CLOCK_TOLERANCE:
        return Check(
            FAIL,
            f"clock {offset:+.0f} s from the public URL's server",
            "synchronize both clocks with NTP (timedatectl set-ntp true); peer schools refuse "
            "signed requests more than 5 minutes off",
        )
    return Check(OK, f"clock within {CLOCK_TOLERANCE:.0f} s of the public URL's server")


def _public_url(config: NodeConfig, keys: NodeKeys | None, timeout: float) -> list[Check]:
    checks: list[Check] = []
    route = config.federation_connect.get(config.origin)
    hint = (
        f"is `carnet serve` running, and do DNS and the reverse proxy send {config.public_url} "
        "to it? (the doctor contacts nothing else)"
    )
    if route is not None:
        hint = f"is `carnet serve` running, and reachable at {route} (federation_connect)?"
    try:
        with httpx.Client(
            base_url=route or config.public_url, timeout=timeout, trust_env=False
        ) as client:
            sent = time.time()
            health = client.get("/healthz")
            received = time.time()
            document = client.get(DOCUMENT_PATH)
    except httpx.HTTPError as error:
        return [Check(FAIL, f"public URL {config.public_url} unreachable: {error}", hint)]
    if health.status_code != 200:
        return [Check(FAIL, f"{config.public_url}/healthz answered {health.status_code}", hint)]
    checks.append(_clock_from(health, sent, received))
    try:
        parsed = verify_node_document(document.content, origin=config.origin, now=int(time.time()))
    except NodeDocumentError as error:
        checks.append(Check(FAIL, f"public URL serves no valid node document: {error}", hint))
        return checks
    if keys is not None and not any(
        bytes(key.public_key) == bytes(keys.signing_key.verify_key) for key in parsed.keys
    ):
        checks.append(
            Check(
                FAIL,
                f"{config.public_url} serves another node (its signing key is not this folder's)",
                "the proxy or DNS points at another server, or this is not the live data folder",
            )
        )
    else:
        through = f" (through {route})" if route is not None else ""
        checks.append(
            Check(OK, f"public URL {config.public_url}{through} reachable and serving this node")
        )
    return checks


def run_doctor(data_dir: Path, *, timeout: float = 10.0) -> list[Check]:
    """Every check, in order; a later check that needs a failed earlier one is skipped."""
    config, first = _config(data_dir)
    checks = [first]
    if config is None:
        return checks
    keys, key_checks = _keys(config)
    checks += key_checks
    steps: list[Callable[[], list[Check]]] = [
        lambda: [_database(config)],
        lambda: [_disk(config)],
        lambda: [c for c in [_timedatectl()] if c is not None],
        lambda: _public_url(config, keys, timeout),
    ]
    for step in steps:
        checks += step()
    return checks


def exit_code(checks: list[Check]) -> int:
    return 1 if any(c.status == FAIL for c in checks) else 0
