"""Real ``carnet serve`` processes on 127.0.0.1, for tests that need several nodes.

Each :class:`Node` is what an operator runs: ``carnet init`` makes its data
folder (a temporary one, under the test's ``tmp_path``) with a school name,
``public_url = http://127.0.0.1:<port>`` and a first admin, then ``carnet
serve`` runs it until the test stops it (SIGTERM), kills it (SIGKILL) or
restarts it on the same folder and port. ``cluster.py`` starts several in
parallel.

Rules of this module:

* Only ``127.0.0.1``, and only ports the OS hands out, each *reserved* for
  the node's lifetime (``ports.py``), so parallel pytest workers, proxies
  and restarts never collide.
* The node reads only the configuration the harness wrote: ``CARNET_*`` and
  ``DATABASE_URL`` variables of the test process are not passed on.
* No process outlives the test: ``Cluster``/``Node`` are context managers,
  the fixtures close them, an ``atexit`` hook kills leftovers, and on Linux
  every child gets ``PR_SET_PDEATHSIG`` so that even a SIGKILLed pytest
  takes its nodes with it.
* The database is SQLite in the data folder, or, when the suite runs on
  PostgreSQL (``CARNET_TEST_DB=postgresql``, as ``tests/conftest.py``), one
  fresh database per node on ``CARNET_TEST_POSTGRES_DSN``, dropped at close.

Configuration: ``carnet init`` writes ``carnet.toml``; before every start
the harness rewrites it as init's values, deep-merged with the node's
``config`` and, if any routes were set, a ``federation_connect`` table
(peer origin → origin actually connected to, e.g. a fault proxy's; the
node signs for the peer's origin and sends the bytes there). The node
validates the file itself; an unknown or invalid setting makes ``carnet
serve`` exit, and the error is raised here with the end of its log.
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import httpx

from tests.multinode.ports import port_of, reserve_port
from tests.multinode.tomlfile import deep_merge, render_toml
from tests.multinode.waiting import wait_until

HOST = "127.0.0.1"
#: Idle connections are dropped after 3 s, before hypercorn closes them (5 s): reusing one
#: the server is closing at that very moment fails a POST with "Server disconnected"
#: (seen in CI), and httpx does not resend a POST.
KEEP_ALIVE = httpx.Limits(keepalive_expiry=3.0)
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Seconds to wait for ``carnet init`` and for a node to answer ``/healthz``.
#: A ceiling for a broken run (a 2-core machine under xdist starts three nodes in ~3 s).
STARTUP_TIMEOUT = 60.0
#: Seconds a node has to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 15.0
HEALTH_PATH = "/healthz"
#: The config key the federation wiring reads: peer origin → URL actually connected to.
FEDERATION_CONNECT = "federation_connect"

Database = Literal["sqlite", "postgresql"]

_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,30}")
_SETUP_URL_RE = re.compile(r"(https?://\S+/setup/\S+)")

#: Runs ``node.cli`` in the child after asking Linux to SIGKILL it when the
#: test process dies (PR_SET_PDEATHSIG = 1), so a crashed or SIGKILLed pytest
#: never leaves nodes behind. If the parent is already gone, exit at once.
_LAUNCHER = """\
import os, signal, sys
if sys.platform == "linux":
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    if os.getppid() != int(os.environ["CARNET_TEST_HARNESS_PARENT"]):
        sys.exit(70)
from node.cli import main
sys.exit(main(sys.argv[1:]))
"""

#: PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not
#: the process. Every child is therefore forked from this one long-lived
#: thread, so a node started from a short-lived helper thread is not killed
#: when that thread returns. (Its worker lives until the interpreter exits.)
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="carnet-harness-spawner")

#: Nodes with a live process, killed at interpreter exit if a test leaked one.
_LIVE: set[Node] = set()


class NodeError(RuntimeError):
    """A node could not be initialised, started or stopped; the message has its log tail."""


def suite_database() -> Database:
    """The backend the suite runs on, as ``tests/conftest.py`` chooses it."""
    return "postgresql" if os.environ.get("CARNET_TEST_DB") == "postgresql" else "sqlite"


# --------------------------------------------------------------------------- processes


def child_environment() -> dict[str, str]:
    """The test process's environment without anything that would configure the node."""
    # A proxy variable would send a node's loopback traffic elsewhere (httpx trusts the env).
    dropped = {"DATABASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"}
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CARNET_") and key.upper() not in dropped
    }
    env["PYTHONUNBUFFERED"] = "1"  # a SIGKILLed node's last lines still reach its log
    env["CARNET_TEST_HARNESS_PARENT"] = str(os.getpid())  # ignored by node.config (test prefix)
    return env


def _spawn(argv: list[str], log: Path | None) -> subprocess.Popen[bytes]:
    """Start ``carnet <argv>`` through the launcher, from the spawner thread."""

    def popen() -> subprocess.Popen[bytes]:
        command = [sys.executable, "-c", _LAUNCHER, *argv]
        common: dict[str, Any] = {
            "cwd": REPO_ROOT,
            "env": child_environment(),
            "stdin": subprocess.DEVNULL,
            # Own session: a Ctrl-C in the terminal reaches pytest only, which
            # then stops the nodes itself (SIGTERM, in order) during teardown.
            "start_new_session": True,
        }
        if log is None:
            return subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **common
            )
        with log.open("ab") as out:
            return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, **common)

    return _SPAWNER.submit(popen).result()


def _kill_leftovers() -> None:
    for node in list(_LIVE):
        node.kill()


atexit.register(_kill_leftovers)


# --------------------------------------------------------------------------- PostgreSQL


def _pg_execute(dsn: str, statement: str) -> None:
    import psycopg2

    connection = psycopg2.connect(dsn.rstrip("/") + "/postgres")
    try:
        connection.autocommit = True  # CREATE/DROP DATABASE refuse to run in a transaction
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


# --------------------------------------------------------------------------- one node


class Node:
    """One ``carnet serve`` process with its own data folder, port and log.

    Attributes:
        name: Short name (``a``); the data folder is ``root/name``, the log ``root/name.log``.
        port: The port it serves on, fixed for its lifetime (restarts reuse it).
        origin: ``http://127.0.0.1:<port>``, its configured ``public_url``.
        config: Extra settings merged into ``carnet.toml`` at every start.
        serve_argv: The ``carnet`` arguments that serve it.
        federation_connect: Routes written as the ``federation_connect`` table.
        admin_email: The first admin's login (``None`` if init made none).
        admin_setup_url: The one-time setup link ``carnet init`` printed for that admin.
    """

    def __init__(
        self,
        name: str,
        root: Path,
        *,
        school: str | None = None,
        config: Mapping[str, Any] | None = None,
        database: Database | None = None,
        database_url: str | None = None,
        admin: bool = True,
        data_dir: Path | None = None,
        serve_argv: Sequence[str] | None = None,
    ) -> None:
        """Describe a node; nothing runs until :meth:`init` or :meth:`start`.

        Args:
            name: Lower-case letters, digits and ``_``; used in paths and database names.
            root: Folder that receives the data folder and the log.
            school: The school's name (default ``École A`` for ``a``).
            config: Extra ``carnet.toml`` settings, nested tables allowed.
            database: ``sqlite`` or ``postgresql``; default: the suite's backend.
            database_url: Use this database as is (not created or dropped here).
            admin: Create a first admin with ``carnet init --admin-email``.
            data_dir: A data folder the caller initialised itself (``root/name`` by
                default): :meth:`init` is not run, and its ``carnet.toml`` is read and
                kept as it is unless :attr:`config` or routes are set.
            serve_argv: The ``carnet`` arguments that serve the node (default
                ``serve --data DATA_DIR``).
        """
        if not _NAME_RE.fullmatch(name):
            raise ValueError(f"node name {name!r} must match {_NAME_RE.pattern}")
        pg_dsn = None
        if not database_url and (database or suite_database()) == "postgresql":
            pg_dsn = os.environ.get("CARNET_TEST_POSTGRES_DSN", "").rstrip("/")
            if not pg_dsn:
                raise NodeError("CARNET_TEST_POSTGRES_DSN is not set (scripts/test sets it)")
        self.name = name
        self.school = school or f"École {name.upper()}"
        self.data_dir = data_dir or root / name
        self._given_data_dir = data_dir is not None
        self.serve_argv = list(serve_argv or ["serve", "--data", str(self.data_dir)])
        self.log_path = root / f"{name}.log"
        self._reservation = reserve_port()  # released by close()
        self.port = port_of(self._reservation)
        self.origin = f"http://{HOST}:{self.port}"
        self.config: dict[str, Any] = deep_merge({}, config or {})
        self.federation_connect: dict[str, str] = {}
        self.admin_email = f"admin@{name}.carnet.test" if admin else None
        self.admin_setup_url: str | None = None
        self.returncode: int | None = None
        self.starts = 0
        self.closed = False
        self._process: subprocess.Popen[bytes] | None = None
        self._terminating = False
        self._init_values: dict[str, Any] | None = None
        self._clients: list[httpx.Client] = []
        self._pg_dsn = pg_dsn
        # pid and port make the name unique across pytest workers and runs on one server.
        self._pg_name = f"carnet_mn_{os.getpid()}_{self.port}_{name}" if pg_dsn else None
        self._pg_created = False
        self.database_url = f"{pg_dsn}/{self._pg_name}" if pg_dsn else (database_url or "")

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<Node {self.name} {self.origin} {state}>"

    # ------------------------------------------------------------------ facts

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (the launcher *is* the server: no wrapper)."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def initialised(self) -> bool:
        return self._init_values is not None

    @property
    def config_path(self) -> Path:
        return self.data_dir / "carnet.toml"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or ``None`` on PostgreSQL."""
        return None if self.database_url else self.data_dir / "carnet.sqlite3"

    def url(self, path: str = "/") -> str:
        return self.origin + path

    def log_text(self) -> str:
        """Everything the node printed: init, every start, and the harness's markers."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def _mark(self, text: str) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"==== harness: {text} ====\n")

    # ------------------------------------------------------------------ configuration

    def set_config(self, values: Mapping[str, Any]) -> None:
        """Merge settings into :attr:`config`; they are written at the next (re)start."""
        self.config = deep_merge(self.config, values)

    def route(self, peer_origin: str, connect_url: str) -> None:
        """Reach ``peer_origin`` through ``connect_url`` (a proxy); written at the next (re)start."""
        self.federation_connect[peer_origin] = connect_url

    def config_values(self) -> dict[str, Any]:
        """What :meth:`write_config` writes: init's values + :attr:`config` + routes."""
        if self._init_values is None:
            raise NodeError(f"{self.name}: not initialised yet")
        values = deep_merge(self._init_values, self.config)
        if self.federation_connect:
            values = deep_merge(values, {FEDERATION_CONNECT: dict(self.federation_connect)})
        return values

    def write_config(self) -> None:
        self.config_path.write_text(render_toml(self.config_values()), encoding="utf-8")

    # ------------------------------------------------------------------ lifecycle

    def _init_argv(self) -> list[str]:
        argv = ["init", "--data", str(self.data_dir), "--school", self.school]
        argv += ["--url", self.origin, "--bind", f"{HOST}:{self.port}"]
        if self.database_url:
            argv += ["--database-url", self.database_url]
        if self.admin_email:
            argv += ["--admin-email", self.admin_email, "--admin-name", f"Admin {self.name}"]
        return argv

    def _spawn_init(self) -> subprocess.Popen[bytes]:
        if self.initialised:
            raise NodeError(f"{self.name}: already initialised")
        if self._pg_dsn and self._pg_name:
            _pg_execute(self._pg_dsn, f'DROP DATABASE IF EXISTS "{self._pg_name}"')
            _pg_execute(self._pg_dsn, f'CREATE DATABASE "{self._pg_name}"')
            self._pg_created = True
        self._mark("carnet " + " ".join(self._init_argv()))
        return _spawn(self._init_argv(), log=None)

    def _finish_init(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        text = output.decode("utf-8", errors="replace")
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(text)
        if process.returncode != 0:
            raise NodeError(
                f"{self.name}: carnet init exited with {process.returncode}:\n{self.log_tail()}"
            )
        found = _SETUP_URL_RE.search(text)
        self.admin_setup_url = found[1] if found and self.admin_email else None
        self._init_values = tomllib.loads(self.config_path.read_text(encoding="utf-8"))

    def init(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Run ``carnet init`` (data folder, keys, database, first admin); waits for it."""
        self._finish_init(self._spawn_init(), timeout)

    def _spawn_serve(self) -> None:
        if self.running:
            raise NodeError(f"{self.name}: already running (pid {self.pid})")
        if self.closed:
            raise NodeError(f"{self.name}: closed (its port was released)")
        if not self.initialised and self._given_data_dir:
            self._init_values = tomllib.loads(self.config_path.read_text(encoding="utf-8"))
        elif not self.initialised:
            self.init()
        if not self._given_data_dir or self.config or self.federation_connect:
            self.write_config()
        self.starts += 1
        self.returncode = None
        self._mark(f"carnet serve, start #{self.starts}")
        self._process = _spawn(self.serve_argv, log=self.log_path)
        self._terminating = False
        _LIVE.add(self)

    def _startup_failure(self) -> str | None:
        """Why the node is not coming up, if its process already ended."""
        if self._process is None or self._process.poll() is None:
            return None
        code = self._reap()
        hint = ""
        if "address already in use" in self.log_text().lower():
            hint = f" (port {self.port} is held by another program)"
        return f"{self.name}: carnet serve exited with {code} before answering{hint}:\n{self.log_tail()}"

    def start(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Initialise if needed, write ``carnet.toml``, serve, and wait for ``/healthz``."""
        self._spawn_serve()
        wait_healthy([self], timeout)

    def healthy(self) -> bool:
        """One ``GET /healthz`` probe: True on 200."""
        try:
            with httpx.Client(trust_env=False, timeout=2.0) as probe:
                return probe.get(self.url(HEALTH_PATH)).status_code == 200
        except httpx.TransportError:
            return False

    def _reap(self) -> int | None:
        if self._process is None:
            return self.returncode
        self.returncode = self._process.wait()
        self._process = None
        _LIVE.discard(self)
        self._mark(f"process ended with exit code {self.returncode}")
        return self.returncode

    def terminate(self) -> None:
        """Send SIGTERM once, without waiting (:meth:`stop` waits).

        Once only: a second SIGTERM during hypercorn's shutdown, after it has
        put back the default handler, would kill the node (exit -15).
        """
        if self._process is not None and not self._terminating and self._process.poll() is None:
            self._terminating = True
            self._process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM (hypercorn's graceful shutdown), wait, SIGKILL after ``timeout``; the exit code."""
        if self._process is None:
            return self.returncode
        if self._process.poll() is None:
            self.terminate()
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._mark(f"no exit {timeout:g} s after SIGTERM: SIGKILL")
                self._process.kill()
        return self._reap()

    def kill(self) -> int | None:
        """SIGKILL, as a crash or power cut: no shutdown code runs. Returns the exit code (-9)."""
        if self._process is None:
            return self.returncode
        if self._process.poll() is None:
            self._mark("SIGKILL")
            self._process.kill()
        return self._reap()

    def restart(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Stop if running, then start again on the same data folder, port and database."""
        self.stop()
        self.start(timeout)

    def close(self) -> None:
        """Stop the process, close the clients made here, drop the PostgreSQL database."""
        try:
            self.stop()
        finally:
            for client in self._clients:
                client.close()
            self._clients.clear()
            self._reservation.close()  # the port is free for others from now on
            self.closed = True
            if self._pg_created and self._pg_dsn and self._pg_name:
                self._pg_created = False
                _pg_execute(self._pg_dsn, f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')

    def __enter__(self) -> Node:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ HTTP

    def client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` on this node's origin, closed with the node if not before.

        ``trust_env=False`` by default: an ``HTTP_PROXY`` in the environment must
        not catch loopback traffic. Keyword arguments go to ``httpx.Client``.
        """
        kwargs.setdefault("timeout", 10.0)
        kwargs.setdefault("trust_env", False)
        kwargs.setdefault("limits", KEEP_ALIVE)
        client = httpx.Client(base_url=self.origin, **kwargs)
        self._clients.append(client)
        return client

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` on this node's origin; close it yourself (``async with``)."""
        kwargs.setdefault("timeout", 10.0)
        kwargs.setdefault("trust_env", False)
        kwargs.setdefault("limits", KEEP_ALIVE)
        return httpx.AsyncClient(base_url=self.origin, **kwargs)


def wait_healthy(nodes: Sequence[Node], timeout: float = STARTUP_TIMEOUT) -> None:
    """Poll every node's ``/healthz`` together until all answer 200 or one has exited.

    Raises:
        NodeError: A node's process ended; the message has its log tail.
        WaitTimeout: Not all answered within ``timeout``.
    """
    pending = list(nodes)

    def all_up() -> bool:
        for node in list(pending):
            failure = node._startup_failure()
            if failure:
                raise NodeError(failure)
            if node.healthy():
                pending.remove(node)
        return not pending

    wait_until(
        all_up,
        timeout=timeout,
        interval=0.05,
        what="nodes to answer " + HEALTH_PATH,
        logs=pending,
        retry_on=(),
    )
