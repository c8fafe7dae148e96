"""``carnet doctor``: each check passes on a sound deployment and fails with a fix hint.

The "public URL" is a small server on 127.0.0.1 playing the node's proxy:
it answers ``/healthz`` with a ``Date`` header (shifted when a test wants a
wrong clock) and serves a node document signed by whichever key the test
gives it (this folder's, or another node's).
"""

from __future__ import annotations

import email.utils
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nacl.signing
import pytest

from federation.nodedoc import build_node_document
from federation.runtime.identity import key_name
from node.cli import main
from node.datafolder import SIGNING_KEY_FILE, load_keys
from node.ops import doctor
from node.ops.doctor import FAIL, OK, WARN, run_doctor


@dataclass
class PublicUrl:
    url: str
    key: nacl.signing.SigningKey
    clock_offset: float = 0.0


@pytest.fixture
def public_url(data_dir: Path) -> Iterator[PublicUrl]:
    state = PublicUrl("", load_keys(data_dir).signing_key)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
            now = int(time.time())
            if self.path == "/healthz":
                body = b'{"status": "ok"}'
            else:
                name = key_name(state.key.verify_key)
                document = build_node_document(
                    origin=state.url, name="École A", signing_keys={name: state.key},
                    valid_from={name: now - 60}, issued_at=now, valid_until=now + 3600,
                )  # fmt: skip
                body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def date_time_string(self, timestamp: Any = None) -> str:
            return email.utils.formatdate(time.time() + state.clock_offset, usegmt=True)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    (data_dir / "carnet.toml").write_text(
        f'school_name = "École A"\npublic_url = "{state.url}"\n', encoding="utf-8"
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _statuses(data_dir: Path) -> dict[str, str]:
    return {c.what: c.status for c in run_doctor(data_dir, timeout=5)}


def _failed(data_dir: Path) -> list[str]:
    return [c.line() for c in run_doctor(data_dir, timeout=5) if c.status == FAIL]


def test_a_sound_deployment_passes_every_check(
    data_dir: Path, public_url: PublicUrl, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor", "--data", str(data_dir)]) == 0
    out = capsys.readouterr().out
    for expected in (
        "✓ configuration valid",
        "✓ keys readable",
        "✓ data folder 0700 and key files 0600",
        "✓ database reachable, migrations current",
        "free on the data folder's disk",
        "✓ clock within",
        f"✓ public URL {public_url.url} reachable and serving this node",
    ):
        assert expected in out
    assert "✗" not in out


def test_another_nodes_document_fails(data_dir: Path, public_url: PublicUrl) -> None:
    public_url.key = nacl.signing.SigningKey.generate()
    assert any("serves another node" in line for line in _failed(data_dir))


def test_a_wrong_clock_fails_with_the_ntp_hint(data_dir: Path, public_url: PublicUrl) -> None:
    public_url.clock_offset = 600
    failed = _failed(data_dir)
    assert any(
        re.search(r"clock \+(599|600|601) s", line) and "timedatectl set-ntp true" in line
        for line in failed
    ), failed


def test_an_unreachable_public_url_fails(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (data_dir / "carnet.toml").write_text('public_url = "http://127.0.0.1:9"\n', encoding="utf-8")
    assert main(["doctor", "--data", str(data_dir)]) == 1
    out = capsys.readouterr().out
    assert (
        "✗ public URL http://127.0.0.1:9 unreachable" in out and "is `carnet serve` running" in out
    )


def test_the_nodes_own_federation_connect_route_is_used_when_it_has_one(
    data_dir: Path, public_url: PublicUrl
) -> None:
    """The compose demo: inside its container, a.localhost:8001 is not the node;
    the route the other schools use (carnet-a:8000) is."""
    served_at = public_url.url
    public_url.url = "http://school-a.localhost:9"  # nothing listens there
    (data_dir / "carnet.toml").write_text(
        f'school_name = "École A"\npublic_url = "{public_url.url}"\n'
        f'[federation_connect]\n"{public_url.url}" = "{served_at}"\n',
        encoding="utf-8",
    )
    checks = {c.what: c.status for c in run_doctor(data_dir, timeout=5)}
    line = f"public URL {public_url.url} (through {served_at}) reachable and serving this node"
    assert checks[line] == OK, checks


def test_loose_modes_fail_with_the_chmod_to_run(data_dir: Path, public_url: PublicUrl) -> None:
    os.chmod(data_dir / SIGNING_KEY_FILE, 0o644)
    os.chmod(data_dir, 0o755)
    [line] = _failed(data_dir)
    assert f"chmod 700 {data_dir}" in line and f"chmod 600 {data_dir / SIGNING_KEY_FILE}" in line


def test_a_missing_key_and_a_bad_config_fail(data_dir: Path, public_url: PublicUrl) -> None:
    (data_dir / SIGNING_KEY_FILE).unlink()
    assert any("keys:" in line and "is missing" in line for line in _failed(data_dir))
    (data_dir / "carnet.toml").write_text('public_url = "ftp://x"\n', encoding="utf-8")
    [check] = run_doctor(data_dir)
    assert check.status == FAIL and "public_url must be an http(s) URL" in check.what


def test_a_database_behind_this_release_fails_with_migrate(
    data_dir: Path, public_url: PublicUrl
) -> None:
    import sqlite3

    db = sqlite3.connect(data_dir / "carnet.sqlite3")
    db.execute(
        "DELETE FROM schema_version WHERE version = (SELECT MAX(version) FROM schema_version)"
    )
    db.commit()
    db.close()
    assert any("carnet admin migrate" in line for line in _failed(data_dir))


def test_low_disk_space_is_a_warning_not_a_failure(
    data_dir: Path, public_url: PublicUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda _: SimpleNamespace(free=200 << 20))
    statuses = _statuses(data_dir)
    assert statuses["0.2 GiB free on the data folder's disk"] == WARN
    assert FAIL not in statuses.values() and OK in statuses.values()


def test_a_missing_sqlite_database_fails_and_is_not_created(
    data_dir: Path, public_url: PublicUrl
) -> None:
    (data_dir / "carnet.sqlite3").unlink()
    assert any("no database at" in line for line in _failed(data_dir))
    assert not (data_dir / "carnet.sqlite3").exists()  # the doctor only reads
