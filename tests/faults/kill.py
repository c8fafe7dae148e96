"""Killing a node's work at a random instant: fork, run the real operation, SIGKILL, check.

A trial forks the test process (already importing everything, so a trial
costs milliseconds, not a node's start-up): the child opens the node's
SQLite database itself and runs the operation through the real services;
the parent waits until the child is about to start, sleeps a random delay
drawn from a seeded generator and sends SIGKILL.  No other connection to
the database is open meanwhile, so the parent's next ``open_node`` is a
restart: SQLite recovers the write-ahead log from disk as a node starting
after a crash does.

The checks that follow every trial are the scenario's (its test module):
``PRAGMA integrity_check`` and ``foreign_key_check`` (``check_database``),
the operation all there or all absent, what was committed before still
there, and the retry a client or a peer would make absorbed.

Trial counts and seeds: ``FAULTS_TRIALS`` and ``FAULTS_SEED``
(``scripts/faults`` sets them; the suite runs ``SUITE_TRIALS`` per scenario).
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee

from node.storage.db import open_database

#: Trials per scenario in the test suite (the three scenarios cost < 60 s: docs/benchmarks.md).
SUITE_TRIALS = 50
#: Default seed; a failing run prints its seed so it can be replayed.
DEFAULT_SEED = 20261129
#: A child that has not finished after this long is a hang, not a crash test.
HANG_SECONDS = 30.0


def trials() -> int:
    return int(os.environ.get("FAULTS_TRIALS", SUITE_TRIALS))


def seed(scenario: str) -> int:
    """The seed of a scenario: the run's seed, offset per scenario so they differ."""
    base = int(os.environ.get("FAULTS_SEED", DEFAULT_SEED))
    return base + sum(scenario.encode())


@contextmanager
def open_node(data_dir: Path) -> Iterator[peewee.Database]:
    """The node's database opened as a restarted node opens it; closed (checkpointed) after."""
    db = open_database(f"sqlite:///{data_dir / 'carnet.sqlite3'}")
    db.connect()
    try:
        yield db
    finally:
        db.close()


def check_database(db: peewee.Database) -> None:
    """SQLite's own checks: every page and index sound, every foreign key resolves."""
    assert db.execute_sql("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert db.execute_sql("PRAGMA foreign_key_check").fetchall() == []


@dataclass
class Outcome:
    """What happened to one trial's child."""

    delay: float
    #: killed before it finished (False: it finished and exited on its own)
    killed: bool
    #: what the child reported through ``progress`` before it died
    reports: list[str] = field(default_factory=list)
    #: seconds from the operation's start to the child's end
    seconds: float = 0.0


class Progress:
    """The child's side of the pipe: what a client would have received before the crash."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def report(self, line: str) -> None:
        os.write(self._fd, line.encode() + b"\n")


def run_and_kill(
    data_dir: Path, operation: Callable[[Progress], Any], delay: float | None
) -> Outcome:
    """Run ``operation`` in a forked child on ``data_dir``; SIGKILL it ``delay`` s after it starts.

    ``delay=None`` lets it finish (calibration and the unkilled baseline).
    The child's database is its own connection, opened after the fork (a
    connection must never cross a fork); the parent must hold none.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.close(read_fd)
            db = open_database(f"sqlite:///{data_dir / 'carnet.sqlite3'}")
            db.connect()
            os.write(write_fd, b"go\n")
            operation(Progress(write_fd))
            status = 0
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(status)
    os.close(write_fd)
    reader = os.fdopen(read_fd, "rb")
    try:
        started = reader.readline()
        assert started == b"go\n", "the child died before starting its operation"
        began = time.perf_counter()
        if delay is not None:
            time.sleep(delay)
            # not reaped yet, so the pid is still the child's (a zombie if it has finished)
            os.kill(pid, signal.SIGKILL)
        status = _wait(pid)
        seconds = time.perf_counter() - began
        reports = [line.decode().rstrip("\n") for line in reader.readlines()]
    finally:
        reader.close()
    if os.WIFSIGNALED(status):  # by us, or by itself at a chosen instant (a fault injected)
        assert os.WTERMSIG(status) == signal.SIGKILL
        return Outcome(delay or 0.0, True, reports, seconds)
    assert os.WEXITSTATUS(status) == 0, "the operation failed in the child (its traceback is above)"
    return Outcome(delay or 0.0, False, reports, seconds)


def _wait(pid: int) -> int:
    deadline = time.monotonic() + HANG_SECONDS
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"the child hung for {HANG_SECONDS} s")
        time.sleep(0.001)


def calibrate(data_dir: Path, operations: list[Callable[[Progress], Any]]) -> float:
    """How long the operation takes here, unkilled (the quickest of a few runs, the first
    being a cold one): kills are drawn within it."""
    return min(run_and_kill(data_dir, operation, None).seconds for operation in operations)


@dataclass
class Table:
    """Per-scenario tally printed at the end (``pytest -s`` and ``scripts/faults`` show it)."""

    scenario: str
    seed: int
    window: float
    killed: int = 0
    finished: int = 0
    committed: int = 0
    absent: int = 0
    replays_absorbed: int = 0
    notes: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def count(self, outcome: Outcome, committed: bool) -> None:
        self.killed += outcome.killed
        self.finished += not outcome.killed
        self.committed += committed
        self.absent += not committed

    def note(self, name: str, n: int = 1) -> None:
        self.notes[name] = self.notes.get(name, 0) + n

    def line(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in sorted(self.notes.items()))
        return (
            f"FAULTS {self.scenario:<18} seed={self.seed} trials={self.killed + self.finished} "
            f"killed={self.killed} finished={self.finished} committed={self.committed} "
            f"absent={self.absent} replays_absorbed={self.replays_absorbed} "
            f"window={self.window * 1000:.1f}ms time={time.perf_counter() - self.started:.1f}s "
            f"{extra}"
        ).rstrip()


def delays(scenario: str, window: float, n: int) -> tuple[int, list[float]]:
    """``n`` kill delays within the operation's time, start to exit (the child's last
    milliseconds are its exit: the trials that finish are the baseline)."""
    chosen = seed(scenario)
    rng = random.Random(chosen)
    return chosen, [rng.uniform(0.0, window) for _ in range(n)]
