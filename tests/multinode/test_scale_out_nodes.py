"""One node, several processes, one PostgreSQL database (a large school or a district).

Two HTTP-only ``carnet serve --no-workers`` processes behind the same public
address and one ``carnet worker`` share the work: the worker texts the
guardian's first-login code that an HTTP process queued, and a post written
through one HTTP process reaches the guardian's live stream held by the
other (``node.live_bus``: PostgreSQL LISTEN/NOTIFY).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.multinode.classes import (
    add_child,
    approve_waiting,
    log_in_admin,
    onboard_guardian,
    post,
    register_guardian,
    teacher_class,
)
from tests.multinode.cluster import Cluster
from tests.multinode.nodes import HOST, _spawn
from tests.multinode.ports import port_of, reserve_port
from tests.multinode.waiting import wait_until

pytestmark = pytest.mark.postgresql_only


class LiveStream:
    """A guardian's open page: the events of ``GET /api/v1/events``, read in a thread."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.events: list[dict[str, Any]] = []
        self.opened = threading.Event()
        self.status = 0
        self.ended: Exception | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            with self.client.stream("GET", "/api/v1/events", timeout=None) as response:
                self.status = response.status_code
                for line in response.iter_lines():
                    self.opened.set()
                    if line.startswith("data: "):
                        self.events.append(json.loads(line[len("data: ") :]))
        except httpx.HTTPError as error:  # the test closes the client: the page is closed
            self.ended = error


def test_two_http_processes_and_a_worker_share_one_database(
    make_cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = make_cluster(("a",), config={"run_workers": False})
    first = cluster.a
    reservation = reserve_port()
    second_url = f"http://{HOST}:{port_of(reservation)}"
    second = _spawn(
        ["serve", "--data", str(first.data_dir), "--bind", f"{HOST}:{port_of(reservation)}",
         "--no-workers"],
        log=tmp_path / "second.log",
    )  # fmt: skip
    worker = _spawn(["worker", "--data", str(first.data_dir)], log=tmp_path / "worker.log")
    stream_client = httpx.Client(base_url=second_url, timeout=10.0)
    try:

        def second_is_up() -> bool:
            try:
                return stream_client.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(second_is_up, timeout=60, what="the second HTTP process answers")
        admin = log_in_admin(first)
        school_class = teacher_class(admin, "CE1")
        slip = register_guardian(
            school_class, add_child(school_class, "Léa", "Martin"), "Parent", "+33639980001"
        )
        # neither HTTP process runs workers: the worker process texts the code
        guardian = onboard_guardian(first, slip)
        approve_waiting(school_class)

        stream_client.cookies = guardian.http.cookies
        page = LiveStream(stream_client)
        assert page.opened.wait(10), f"no live stream on the second process: {page.ended}"
        assert page.status == 200
        post_id = post(school_class, "Sortie au musée jeudi")  # through the first process
        wait_until(
            lambda: [e for e in page.events if e.get("message") == post_id],
            timeout=20, what="the post's event on the other process's stream",
        )  # fmt: skip
        [event] = [e for e in page.events if e.get("message") == post_id]
        assert event["type"] == "post" and event["class_id"] == school_class.class_id
        assert "Sortie" not in json.dumps(page.events)  # ids and kinds, never content
    finally:
        stream_client.close()
        for process in (second, worker):
            process.terminate()
        for process in (second, worker):
            try:
                process.wait(timeout=15)
            except Exception:
                process.kill()
        reservation.close()
