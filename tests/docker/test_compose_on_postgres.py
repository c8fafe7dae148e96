"""``docker/compose.yaml`` run for real without Docker: everything but the containers.

The PostgreSQL service's ``create-schools`` script runs with ``sh`` and this
machine's ``psql`` against the test cluster; each school's init service runs
its command text with the real ``carnet``; each node is the Dockerfile's
``CMD`` as a real process. Only what Docker itself provides is replaced: the
volume ``/data`` by a temporary folder, the service names (``db``,
``carnet-a``…) by the ports on 127.0.0.1 this test picks.

The script creates the roles and databases ``carnet_a``, ``carnet_b`` and
``carnet_c`` by name, so runs on one cluster take turns (a lock file) and
drop them before and after.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg2
import pytest

from federation.keys import fingerprint
from node.datafolder import load_keys
from tests.docker.test_compose import COMPOSE, ROOT, SCHOOLS, compose  # noqa: F401 (fixture)
from tests.multinode.nodes import HOST, Node, wait_healthy
from tests.multinode.test_peering_nodes import admin_client

pytestmark = pytest.mark.postgresql_only

DOCKERFILE = ROOT / "docker" / "Dockerfile"
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
#: The ``carnet`` script installed next to the interpreter running the tests (.venv/bin).
VENV_BIN = Path(sys.executable).parent
SETUP_URL_RE = re.compile(r"(https?://\S+/setup/\S+)")
DOCTOR_DATABASE_OK = re.compile(r"^✓ database reachable, migrations current", re.MULTILINE)
PROCESS_TIMEOUT = 60.0


def _dockerfile() -> tuple[list[str], dict[str, str]]:
    """The image's ``CMD`` (exec form) and its ``CARNET_*`` environment."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    found = re.search(r"^CMD (\[.*\])$", text, re.MULTILINE)
    assert found, "the Dockerfile has no exec-form CMD"
    cmd: list[str] = json.loads(found[1])
    env = dict(re.findall(r"^ENV (CARNET_\w+)=(\S+)$", text, re.MULTILINE))
    return cmd, env


def _pg(dsn: str, database: str = "postgres", user: str | None = None) -> Any:
    parts = urlsplit(dsn)
    return psycopg2.connect(
        host=parts.hostname, port=parts.port or 5432, dbname=database,
        user=user or parts.username, password=parts.password,
    )  # fmt: skip


def _drop_schools(dsn: str) -> None:
    connection = _pg(dsn)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            for school in SCHOOLS:
                cursor.execute(f"DROP DATABASE IF EXISTS carnet_{school} WITH (FORCE)")
                cursor.execute(f"DROP ROLE IF EXISTS carnet_{school}")
    finally:
        connection.close()


@pytest.fixture
def cluster_dsn(postgres_url: str | None) -> Iterator[str]:
    """The suite's PostgreSQL cluster, to this test alone: the compose script's names are fixed.

    (Through ``postgres_url``, as ``tests/conftest.py`` keeps a test in the PostgreSQL phase.)
    """
    assert postgres_url, "CARNET_TEST_DB=postgresql and CARNET_TEST_POSTGRES_DSN (scripts/test)"
    dsn = postgres_url.rsplit("/", 1)[0]
    parts = urlsplit(dsn)
    lock = Path(tempfile.gettempdir()) / f"carnet-compose-{parts.hostname}-{parts.port}.lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # released when the file closes
        _drop_schools(dsn)  # left by a killed run
        try:
            yield dsn
        finally:
            _drop_schools(dsn)


class Processes:
    """The one-shot commands of a test (``sh``, ``carnet init``, ``carnet doctor``)."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.started: list[subprocess.Popen[str]] = []

    def start(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            argv, env=env, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.started.append(process)
        return process

    def close(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.communicate()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.close()


def _output(process: subprocess.Popen[str]) -> str:
    """What the command printed, once it has exited successfully."""
    output, _ = process.communicate(timeout=PROCESS_TIMEOUT)
    assert process.returncode == 0, output
    return output


def _files(folder: Path) -> dict[str, bytes]:
    """``carnet.toml`` and the key files (the database is on the server)."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _sessions(dsn: str) -> set[tuple[str, str]]:
    """(role, database) of every connection to or by the schools' roles and databases."""
    connection = _pg(dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT usename, datname FROM pg_stat_activity"
                " WHERE usename = ANY(%(names)s) OR datname = ANY(%(names)s)",
                {"names": [f"carnet_{s}" for s in SCHOOLS]},
            )
            return set(cursor.fetchall())
    finally:
        connection.close()


def test_the_three_schools_of_the_compose_file_run_and_federate_on_postgresql(
    compose: dict[str, Any],  # noqa: F811 (the fixture imported above)
    cluster_dsn: str,
    processes: Processes,
    tmp_path: Path,
) -> None:
    services = compose["services"]
    pg = urlsplit(cluster_dsn)
    assert (PG_BIN / "psql").exists() and (VENV_BIN / "carnet").exists()
    path = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(tmp_path)}  # `carnet` is the real one

    # db: the script the postgres image runs once, with the environment compose gives it
    db_env = {
        "PATH": f"{PG_BIN}:/usr/bin:/bin", "POSTGRES_USER": "postgres", "POSTGRES_DB": "postgres",
        **services["db"]["environment"], "PGHOST": pg.hostname or "", "PGPORT": str(pg.port),
    }  # fmt: skip
    if pg.password:
        db_env["PGPASSWORD"] = pg.password
    script = tmp_path / "10-create-schools.sh"
    script.write_text(compose["configs"]["create-schools"]["content"], encoding="utf-8")
    _output(processes.start(["sh", str(script)], db_env))

    cmd, image_env = _dockerfile()
    assert cmd[:2] == ["carnet", "serve"] and cmd[-2] == "--bind", cmd
    nodes: dict[str, Node] = {}
    try:
        for school in SCHOOLS:
            node = nodes[school] = Node(school, tmp_path, data_dir=tmp_path / school, admin=False)
            # the Dockerfile's CMD on the test's folder, bound to the port the test picked
            argv = [a.replace("/data", str(node.data_dir)) for a in cmd[1:-1]]
            node.serve_argv = [*argv, f"{HOST}:{node.port}"]

        def init(school: str) -> subprocess.Popen[str]:
            """carnet-X-init: its entrypoint and command text, as compose runs them."""
            service = services[f"carnet-{school}-init"]
            data = str(nodes[school].data_dir)
            text = service["command"][0].replace("/data", data)
            for other in SCHOOLS:
                text = text.replace(f"http://carnet-{other}:8000", nodes[other].origin)
            env = {k: v.replace("/data", data) for k, v in image_env.items()}
            env.update(service["environment"], **path)
            env["DATABASE"] = env["DATABASE"].replace("@db:5432/", f"@{pg.hostname}:{pg.port}/")
            return processes.start([*service["entrypoint"], text], env)

        first_run = {s: init(s) for s in SCHOOLS}
        printed = {s: _output(p) for s, p in first_run.items()}
        made = {s: _files(nodes[s].data_dir) for s in SCHOOLS}
        link = SETUP_URL_RE.search(printed["a"])
        assert link, printed["a"]
        nodes["a"].admin_email = services["carnet-a-init"]["environment"]["ADMIN_EMAIL"]
        nodes["a"].admin_setup_url = link[1]

        # carnet-X: the three at once
        for node in nodes.values():
            node._spawn_serve()
        wait_healthy(list(nodes.values()))
        assert all(node.healthy() for node in nodes.values())

        # meanwhile: `docker compose up` again (the init steps run again), and the doctor
        again = {s: init(s) for s in SCHOOLS}
        doctors = {
            s: processes.start(["carnet", "doctor", "--data", str(nodes[s].data_dir)], path)
            for s in SCHOOLS
        }

        # A's admin adds B by its public URL, which A reaches only through the routes init wrote
        client, headers = admin_client(nodes["a"])
        b_url = services["carnet-b-init"]["environment"]["PUBLIC_URL"]
        added = client.post("/api/v1/admin/peers", json={"origin": b_url}, headers=headers)
        assert added.status_code == 201, added.text
        shown = [k["fingerprint"] for k in added.json()["keys"] if k["current"]]
        assert shown == [fingerprint(load_keys(nodes["b"].data_dir).signing_key.verify_key)]
        confirmed = client.post(
            f"/api/v1/admin/peers/{added.json()['id']}/confirm",
            json={"fingerprints": shown}, headers=headers,
        )  # fmt: skip
        assert confirmed.json()["state"] == "active", confirmed.text

        for school in SCHOOLS:
            output = _output(again[school])
            assert "Kept the existing" in output and "An admin already exists" in output, output
            assert _files(nodes[school].data_dir) == made[school]
            doctor = doctors[school].communicate(timeout=PROCESS_TIMEOUT)[0]
            assert "✓ keys readable" in doctor and DOCTOR_DATABASE_OK.search(doctor), doctor
            # the public URL is checked through the node's own route, as inside a container
            assert "reachable and serving this node" in doctor and "✗" not in doctor, doctor

        # each node on its own database as its own role; no role may enter another's database
        assert _sessions(cluster_dsn) == {(f"carnet_{s}", f"carnet_{s}") for s in SCHOOLS}
        with pytest.raises(psycopg2.OperationalError, match="permission denied"):
            _pg(cluster_dsn, database="carnet_a", user="carnet_b").close()
    finally:
        for node in nodes.values():
            node.close()
