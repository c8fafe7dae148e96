"""A real node with a class, an approved guardian and a push device, for the ops tests.

Plain functions over :mod:`tests.multinode` (real ``carnet serve`` processes,
the reference client) and a push service on 127.0.0.1 that records what
arrives, so a test can show that a node restored from a backup (or moved to
PostgreSQL) is the same node: same signing key, same VAPID key, same people.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from federation.nodedoc import verify_node_document
from federation.runtime.client import DOCUMENT_PATH
from node.refclient import login_secret
from tests.factories import PASSPHRASE, client_account
from tests.multinode import classes as k
from tests.multinode.nodes import Node
from tests.multinode.waiting import wait_until
from tests.push_factories import FakeBrowser, vapid_claims


class PushService:
    """Answers ``201 Created`` to every push and keeps the requests, as ``httpx.Request``s."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
                received.append(
                    httpx.Request("POST", url, headers=dict(self.headers), content=body)
                )
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, count: int) -> list[httpx.Request]:
        wait_until(lambda: len(self.requests) >= count, timeout=30, what=f"{count} pushes")
        return self.requests


@contextmanager
def push_service() -> Iterator[PushService]:
    service = PushService()
    thread = threading.Thread(target=service.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.server.shutdown()
        service.server.server_close()


@dataclass
class School:
    node: Node
    school_class: k.SchoolClass
    guardian: k.Session
    phone: str
    device: FakeBrowser


def set_up_school(node: Node, push: PushService, phone: str = "+33639981234") -> School:
    """A teacher's class with one approved guardian whose device gets pushes at ``push``."""
    admin = k.log_in_admin(node)
    school_class = k.teacher_class(admin, "CM1 B")
    slip = k.register_guardian(
        school_class, k.add_child(school_class, "Léa", "Petit"), "Anne Petit", phone
    )
    guardian = k.onboard_guardian(node, slip)
    k.approve_waiting(school_class)
    device = FakeBrowser(f"{push.url}/push/device-1")
    guardian.post(
        "/api/v1/push/subscriptions",
        {"endpoint": device.endpoint, "p256dh": device.p256dh, "auth": device.auth},
    )
    return School(node, school_class, guardian, phone, device)


def log_in(node: Node, login: str) -> k.Session:
    """A fresh browser logs in with the passphrase, as the login page does."""
    session = k.browser(node)
    pre = session.post("/api/v1/auth/prelogin", {"login": login}, expect=200)
    secret = login_secret(PASSPHRASE, pre["salt"], pre["iterations"])
    session.post("/api/v1/auth/login", {"login": login, "login_secret": secret}, expect=200)
    session.refresh_csrf()
    session.login, session.keys = login, client_account(login).keys
    return session


def node_keys(node: Node) -> list[str]:
    """The current signing keys the node's document names, verified as a peer does."""
    import time

    raw = node.client().get(DOCUMENT_PATH).content
    document = verify_node_document(raw, origin=node.origin, now=int(time.time()))
    return sorted(bytes(key.public_key).hex() for key in document.keys)


def pushed_title(school: School, request: httpx.Request, vapid_public_key: str) -> dict[str, Any]:
    """Check the VAPID signature with ``vapid_public_key`` and open the payload as the device does."""
    claims = vapid_claims(request, vapid_public_key)
    assert claims["sub"].startswith("http")
    return school.device.open(request)
