"""Schemathesis against the node's OpenAPI document, as each kind of person.

For every operation of ``/api/v1/openapi.json`` and every role (nobody
logged in, a guardian, a teacher, an admin), requests that follow the
document and requests that break it are sent to the real application, in
process (Schemathesis drives the ASGI app; no server, no network).  Every
answer must:

- never be a 5xx;
- be documented: a 2XX in the operation's media type, a 4XX with the
  ``Error`` body (``{"error": {"code", "message"}}``);
- refuse a request that breaks the document (a 4XX, never a 2XX).

The suite runs a bounded, deterministic number of examples (hypothesis seeded
per role and operation, no example database); ``scripts/fuzz`` runs the same
test deeper: ``FUZZ_EXAMPLES`` examples per operation and generation
mode, ``FUZZ_SEED`` to explore other inputs, and prints a summary.
"""

from __future__ import annotations

import collections
import ipaddress
import os
import re
import socket
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from quart import Quart
from schemathesis import checks
from schemathesis.config._checks import NegativeDataRejectionConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi

from node.app import create_app
from tests.conftest import backend
from tests.factories import secret_for
from tests.feed_factories import make_class_feed

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1"))
SEED = int(os.environ.get("FUZZ_SEED", "0"))
#: scripts/fuzz -o: only the operations whose "METHOD /api/v1/path" this regular expression finds
ONLY = re.compile(os.environ.get("FUZZ_OPERATIONS", ""))

LOGINS = {
    "anonymous": None,
    "guardian": "+33639980000",
    "teacher": "dubois@school.test",
    "admin": "admin@school.test",
}

#: every role on SQLite; in the suite's PostgreSQL run the teacher, who reaches the most
#: operations with real rows, meets that engine's own refusals (scripts/fuzz: every role)
ROLES = list(LOGINS) if backend() == "sqlite" or "FUZZ_EXAMPLES" in os.environ else ["teacher"]

#: operations the fuzzer leaves to their own tests, with the reason
NOT_FUZZED = {
    # an event stream lives as long as the session: each request would wait for
    # Schemathesis's read timeout; tests/node/api/test_api_events.py reads it
    ("GET", "/api/v1/events"),
}

#: how a request that breaks the document may be refused (RFC 9110 4XX codes the API uses)
REFUSALS = ["400", "401", "403", "404", "405", "409", "410", "413", "415", "416", "422", "429"]


def no_server_error(ctx: Any, response: Any, case: Any) -> None:
    """No 5xx, but the documented 502 "another school did not answer".

    The test resolves no outside name, so an operation that reaches another
    school (adding a peer, a join request) gets that answer, as it would for a
    mistyped address.
    """
    if response.status_code < 500:
        return
    if response.status_code == 502:
        error = response.json().get("error", {})
        if error.get("code") == "unreachable" and error.get("message"):
            return
    raise AssertionError(f"server error {response.status_code}: {response.text[:300]}")


CHECKS = [
    no_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]

#: the CSRF refusal: the session changed under the fuzzer (it logged itself out)
EXPIRED = "This form has expired"


@dataclass
class Report:
    role: str
    operations: int = 0
    requests: int = 0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    relogins: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> str:
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return (
            f"fuzz {self.role}: {self.operations} operations, {self.requests} requests "
            f"({codes}), {self.relogins} new logins, {len(self.failures)} failures"
        )


class Session:
    """A browser of one role: the session and CSRF cookies, and the token header."""

    def __init__(self, app: Quart, login: str | None) -> None:
        self.client = asgi.get_client(app)
        self.login = login

    def __enter__(self) -> Session:
        self.client.__enter__()  # starts the app (its lifespan: workers and all)
        self.log_in()
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.__exit__(*exc)

    def log_in(self) -> None:
        self.client.cookies.clear()
        self.client.headers.pop("X-CSRF-Token", None)
        token = self.client.get("/api/v1/session").json()["csrf_token"]
        self.client.headers["X-CSRF-Token"] = token
        if self.login is None:
            return
        pre = self.client.post("/api/v1/auth/prelogin", json={"login": self.login}).json()
        secret = secret_for(pre["salt"], pre["iterations"])
        answer = self.client.post(
            "/api/v1/auth/login", json={"login": self.login, "login_secret": secret}
        )
        assert answer.status_code == 200, answer.text
        self.client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]

    def lost(self, response: requests.Response) -> bool:
        """The fuzzer ended this session itself (logout, "end my other sessions"…)."""
        if self.login is None:
            return response.status_code == 403 and EXPIRED in response.text
        return response.status_code == 401 or (
            response.status_code == 403 and EXPIRED in response.text
        )


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Refuse to resolve any host but this machine's, and list the ones asked for.

    Fuzzed addresses reach code that connects out (a peer school's document, a
    push service): nothing may leave the machine, and a refused name fails at
    once instead of waiting for a network timeout.
    """
    asked: list[str] = []
    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            local = name == "localhost" or ipaddress.ip_address(name).is_loopback
        except ValueError:
            local = False
        if not local:
            asked.append(name)
            raise socket.gaierror(socket.EAI_NONAME, "the fuzz test resolves no outside name")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def seeded_app(node_config: dict[str, Any]) -> Quart:
    """A node with a school, a class with one approved family and a post: ids 1, 2… exist."""
    app = create_app(node_config)
    storage, ctx = app.config["CARNET_STORAGE"], app.config["CARNET_CTX"]
    cf = make_class_feed(storage, ctx, families=1)
    cf.post({"text": "Bonjour", "attachments": []})
    return app


def operations(app: Quart, role: str) -> Iterator[Any]:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    public = {  # what nobody logged in may call: the others are a 401 (authz matrix)
        (method.upper(), "/api/v1" + path.removeprefix("/api/v1"))
        for path, item in schema.raw_schema["paths"].items()
        for method, entry in item.items()
        if entry.get("security") != [{"session": [], "csrf": []}]
    }
    # the session cookie and CSRF header are the logged-in browser's, not generated
    schema.config.generation.update(with_security_parameters=False)
    schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
        expected_statuses=REFUSALS
    )
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key not in NOT_FUZZED and (role != "anonymous" or key in public):
            if ONLY.search(f"{key[0]} {key[1]}"):
                yield operation


def modes(operation: Any) -> list[GenerationMode]:
    """Breaking the document needs something to break: a parameter or a body."""
    if operation.body or list(operation.iter_parameters()):
        return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    return [GenerationMode.POSITIVE]


def fuzz_operation(session: Session, operation: Any, report: Report) -> None:
    for mode in modes(operation):
        fuzz_mode(session, operation, mode, report)


def fuzz_mode(session: Session, operation: Any, mode: GenerationMode, report: Report) -> None:
    key = f"{SEED}:{report.role}:{operation.method}:{operation.path}:{mode.value}"

    @seed(zlib.crc32(key.encode()))
    @settings(
        max_examples=EXAMPLES,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case: Any) -> None:
        response = case.call(session=session.client)
        if session.lost(response):
            report.relogins += 1
            session.log_in()
            response = case.call(session=session.client)
        report.requests += 1
        report.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as failures:
            report.failures.append(f"{mode.value} {operation.label}\n{failures}")
            if EXAMPLES > 1:  # scripts/fuzz: tell it now, a deep run takes long
                print(f"\nFAILURE {report.failures[-1]}", flush=True)

    send()


@pytest.mark.filterwarnings(
    # Schemathesis's strategies draw from ``random`` (hypothesis asks them not to)
    "ignore::hypothesis.errors.HypothesisDeprecationWarning"
)
@pytest.mark.parametrize("role", ROLES)
def test_the_api_answers_every_request_as_documented(
    role: str, node_config: dict[str, Any], loopback_only: list[str]
) -> None:
    app = seeded_app(node_config)
    report = Report(role)
    try:
        with Session(app, LOGINS[role]) as session:
            for operation in operations(app, role):
                report.operations += 1
                fuzz_operation(session, operation, report)
    finally:
        asgi.shutdown_lifespans()  # stops the node's workers and closes its database
    print("\n" + report.summary(), f"(outside names refused: {len(loopback_only)})")
    assert report.operations >= (10 if role == "anonymous" else 100) or ONLY.pattern
    assert report.failures == [], "\n\n".join(report.failures)
