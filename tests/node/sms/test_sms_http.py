"""HTTP SMS backend against a mocked provider (pytest-httpx)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from pytest_httpx import HTTPXMock

from node.config import SmsConfig
from node.sms import HttpSmsGateway, SmsStatus, make_gateway
from node.sms.http import MAX_ANSWER_BYTES
from tests.bomb_factories import CountedStream, bomb

URL = "https://sms.provider.test/v1/messages"
TOKEN = "tok_live_very-secret-4242"
NUMBER = "+33612345678"
CONFIG = SmsConfig(
    backend="http",
    http_url=URL,
    http_token=TOKEN,
    http_sender="EcoleJaures",
    http_retry_base_delay=0.5,
    http_max_attempts=3,
)


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
async def gateway(sleep: FakeSleep) -> AsyncIterator[HttpSmsGateway]:
    gw = HttpSmsGateway(CONFIG, sleep=sleep)
    yield gw
    await gw.aclose()


async def test_success_with_provider_id(httpx_mock: HTTPXMock, gateway: HttpSmsGateway) -> None:
    httpx_mock.add_response(method="POST", url=URL, json={"id": "SM123"})
    result = await gateway.send(NUMBER, "Code : 123456", reference="msg-1")
    assert result.status is SmsStatus.SENT
    assert result.provider_id == "SM123"
    assert result.error is None and not result.retryable


async def test_request_body_and_headers_exact(httpx_mock: HTTPXMock, sleep: FakeSleep) -> None:
    config = replace(
        CONFIG,
        http_to_field="recipient",
        http_text_field="message",
        http_sender_field="sender",
        http_reference_field="client_ref",
        http_id_field="message_id",
    )
    httpx_mock.add_response(json={"message_id": 987})
    gw = HttpSmsGateway(config, sleep=sleep)
    try:
        result = await gw.send(NUMBER, "Bonjour é", reference="msg-2")
    finally:
        await gw.aclose()
    assert result.provider_id == "987"

    [request] = httpx_mock.get_requests()
    assert request.method == "POST"
    assert str(request.url) == URL
    assert json.loads(request.content) == {
        "recipient": NUMBER,
        "message": "Bonjour é",
        "sender": "EcoleJaures",
        "client_ref": "msg-2",
    }
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert sleep.calls == []


async def test_no_authorization_header_without_token(
    httpx_mock: HTTPXMock, sleep: FakeSleep
) -> None:
    httpx_mock.add_response(json={"id": "x"})
    gw = HttpSmsGateway(replace(CONFIG, http_token=""), sleep=sleep)
    try:
        await gw.send(NUMBER, "t", reference="r")
    finally:
        await gw.aclose()
    [request] = httpx_mock.get_requests()
    assert "Authorization" not in request.headers


@pytest.mark.parametrize(
    "response",
    [
        {"text": "queued, thanks"},
        {"json": {"status": "ok"}},
        {"json": ["SM1"]},
        {"json": {"id": None}},
        {"json": {"id": True}},
        {"status_code": 202, "json": {"id": ""}},
    ],
)
async def test_success_without_readable_id(
    httpx_mock: HTTPXMock,
    gateway: HttpSmsGateway,
    caplog: pytest.LogCaptureFixture,
    response: dict[str, object],
) -> None:
    httpx_mock.add_response(**response)  # type: ignore[arg-type]
    result = await gateway.send(NUMBER, "t", reference="r")
    assert result.status is SmsStatus.SENT and result.provider_id is None
    assert any(r.levelno == logging.WARNING for r in caplog.records)


async def test_500_then_200_is_retried(
    httpx_mock: HTTPXMock, gateway: HttpSmsGateway, sleep: FakeSleep
) -> None:
    httpx_mock.add_response(status_code=500)
    httpx_mock.add_response(json={"id": "SM2"})
    result = await gateway.send(NUMBER, "t", reference="r")
    assert result.status is SmsStatus.SENT and result.provider_id == "SM2"
    assert len(httpx_mock.get_requests()) == 2
    assert sleep.calls == [0.5]


async def test_three_500s_fail_retryable(
    httpx_mock: HTTPXMock, gateway: HttpSmsGateway, sleep: FakeSleep
) -> None:
    for _ in range(3):
        httpx_mock.add_response(status_code=503)
    result = await gateway.send(NUMBER, "t", reference="r")
    assert result.status is SmsStatus.FAILED and result.retryable
    assert result.error is not None and "503" in result.error
    assert result.provider_id is None
    assert len(httpx_mock.get_requests()) == 3
    assert sleep.calls == [0.5, 1.0]  # exponential back-off, none after the last attempt


async def test_429_honours_retry_after(
    httpx_mock: HTTPXMock, gateway: HttpSmsGateway, sleep: FakeSleep
) -> None:
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "7"})
    httpx_mock.add_response(json={"id": "SM3"})
    result = await gateway.send(NUMBER, "t", reference="r")
    assert result.status is SmsStatus.SENT and result.provider_id == "SM3"
    assert sleep.calls == [7.0]


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("3600", 30.0), ("-5", 0.0), ("soon", 0.5), (None, 0.5), ("nan", 0.5)],
)
async def test_429_retry_after_capped_or_defaulted(
    httpx_mock: HTTPXMock,
    gateway: HttpSmsGateway,
    sleep: FakeSleep,
    retry_after: str | None,
    expected: float,
) -> None:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    httpx_mock.add_response(status_code=429, headers=headers)
    httpx_mock.add_response(json={"id": "SM4"})
    result = await gateway.send(NUMBER, "t", reference="r")
    assert result.status is SmsStatus.SENT
    assert sleep.calls == [expected]


async def test_429_on_every_attempt_fails_retryable(
    httpx_mock: HTTPXMock, gateway: HttpSmsGateway
) -> None:
    for _ in range(3):
        httpx_mock.add_response(status_code=429, headers={"Retry-After": "1"})
    result = await gateway.send(NUMBER, "t", reference="r")
    assert result.status is SmsStatus.FAILED and result.retryable
    assert result.error is not None and "429" in result.error


@pytest.mark.parametrize("code", [400, 401, 403, 404, 422, 301])
async def test_client_error_fails_at_once(
    httpx_mock: HTTPXMock, gateway: HttpSmsGateway, sleep: FakeSleep, code: int
) -> None:
    httpx_mock.add_response(
        status_code=code, json={"error": f"bad number {NUMBER}"}, headers={"Location": "/x"}
    )
    result = await gateway.send(NUMBER, "t", reference="r")
    assert result.status is SmsStatus.FAILED and not result.retryable
    assert result.error is not None and str(code) in result.error
    assert NUMBER not in result.error
    assert len(httpx_mock.get_requests()) == 1
    assert sleep.calls == []


async def test_timeout_is_retried(
    httpx_mock: HTTPXMock, gateway: HttpSmsGateway, sleep: FakeSleep
) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("read timed out"))
    httpx_mock.add_response(json={"id": "SM5"})
    result = await gateway.send(NUMBER, "t", reference="r")
    assert result.status is SmsStatus.SENT and result.provider_id == "SM5"
    assert sleep.calls == [0.5]


async def test_connection_errors_exhaust_attempts(
    httpx_mock: HTTPXMock, gateway: HttpSmsGateway, sleep: FakeSleep
) -> None:
    httpx_mock.add_exception(httpx.ConnectError("refused"))
    httpx_mock.add_exception(httpx.ConnectTimeout("slow"))
    httpx_mock.add_exception(httpx.RemoteProtocolError("garbage"))
    result = await gateway.send(NUMBER, "t", reference="r")
    assert result.status is SmsStatus.FAILED and result.retryable
    assert result.error == "provider unreachable (RemoteProtocolError)"
    assert sleep.calls == [0.5, 1.0]


async def test_single_attempt_config(httpx_mock: HTTPXMock, sleep: FakeSleep) -> None:
    httpx_mock.add_response(status_code=502)
    gw = HttpSmsGateway(replace(CONFIG, http_max_attempts=1), sleep=sleep)
    try:
        result = await gw.send(NUMBER, "t", reference="r")
    finally:
        await gw.aclose()
    assert result.status is SmsStatus.FAILED and result.retryable
    assert sleep.calls == []


@pytest.mark.parametrize("bad", ["0612345678", "+33 6 12 34 56 78", "+336", "33612345678"])
async def test_invalid_number_rejected_before_any_request(
    httpx_mock: HTTPXMock, gateway: HttpSmsGateway, bad: str
) -> None:
    with pytest.raises(ValueError, match="E.164"):
        await gateway.send(bad, "t", reference="r")
    assert httpx_mock.get_requests() == []


async def test_token_and_number_never_logged(
    httpx_mock: HTTPXMock, gateway: HttpSmsGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    httpx_mock.add_response(status_code=500)
    httpx_mock.add_exception(httpx.ConnectError(f"refused {TOKEN}"))
    httpx_mock.add_response(status_code=429, text="{}")
    httpx_mock.add_response(status_code=400)
    httpx_mock.add_response(text="not json")
    await gateway.send(NUMBER, "t", reference="r1")  # 500, error, 429 → failed
    await gateway.send(NUMBER, "t", reference="r2")  # 400
    await gateway.send(NUMBER, "t", reference="r3")  # 200 without id → warning
    assert caplog.records
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        assert TOKEN not in text
        assert "612345678" not in text
    assert any("•• •• •• •• 78" in r.getMessage() for r in caplog.records)


async def test_client_settings() -> None:
    gw = HttpSmsGateway(replace(CONFIG, http_timeout=4.5))
    try:
        client = gw._client
        assert client.follow_redirects is False
        assert client.timeout == httpx.Timeout(4.5)
    finally:
        await gw.aclose()


async def test_make_gateway_passes_transport(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "via-transport"})

    gw = make_gateway(CONFIG, tmp_path, transport=httpx.MockTransport(handler))
    try:
        result = await gw.send(NUMBER, "t", reference="r")
    finally:
        await gw.aclose()
    assert result.provider_id == "via-transport" and len(seen) == 1


@pytest.mark.parametrize(
    ("alert_sender", "expected"), [("EcoleUrgence", "EcoleUrgence"), ("", "EcoleJaures")]
)
async def test_an_alert_goes_from_the_alert_sender(
    httpx_mock: HTTPXMock, sleep: FakeSleep, alert_sender: str, expected: str
) -> None:
    """A STOP a provider applies per sender to the ordinary texts does not block alerts."""
    httpx_mock.add_response(json={"id": "SM1"})
    httpx_mock.add_response(json={"id": "SM2"})
    gw = HttpSmsGateway(replace(CONFIG, http_alert_sender=alert_sender), sleep=sleep)
    try:
        await gw.send(NUMBER, "Urgent", reference="a-1", urgent=True)
        await gw.send(NUMBER, "Code", reference="c-1")
    finally:
        await gw.aclose()
    alert, code = (json.loads(r.content)["from"] for r in httpx_mock.get_requests())
    assert (alert, code) == (expected, "EcoleJaures")


# --- A provider's answer is never inflated, a redirect never followed (research §6) -----------


async def test_a_compressed_or_too_long_answer_is_not_read_and_the_text_counts_as_sent(
    httpx_mock: HTTPXMock, gateway: HttpSmsGateway, sleep: FakeSleep,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """The provider took the text (2xx): it is sent; its id, inside a bomb, is not read."""
    padded = b'{"id": "SM1", "pad": "' + b"x" * (10 * MAX_ANSWER_BYTES) + b'"}'
    bodies = [CountedStream(bomb("gzip")), CountedStream(bomb("deflate")), CountedStream(padded)]
    for body, encoding in zip(bodies, ["gzip", "deflate", ""], strict=True):
        headers = {"Content-Encoding": encoding} if encoding else {}
        httpx_mock.add_response(headers=headers, stream=body)
        result = await gateway.send(NUMBER, "t", reference="r")
        assert result.status is SmsStatus.SENT and result.provider_id is None
    gzip_body, deflate_body, long_body = bodies
    assert gzip_body.taken == deflate_body.taken == 0  # not one compressed byte read
    assert long_body.taken <= MAX_ANSWER_BYTES + 16384  # one piece past the bound, then it stops
    assert "a compressed answer ('gzip') is not read" in caplog.text
    assert "a compressed answer ('deflate') is not read" in caplog.text
    assert f"an answer over {MAX_ANSWER_BYTES} bytes is not read" in caplog.text
    assert {r.headers["Accept-Encoding"] for r in httpx_mock.get_requests()} == {"identity"}
    assert sleep.calls == []


REDIRECTS = [
    (301, URL, "provider redirected to sms.provider.test (HTTP 301)"),  # to itself
    (
        302,
        "http://169.254.169.254/latest/meta-data/",
        "provider redirected to 169.254.169.254 (HTTP 302)",
    ),  # noqa: E501
    (307, f"{URL}?to={NUMBER}&again=1", "provider redirected to sms.provider.test (HTTP 307)"),
    (308, "/v1/elsewhere", "provider redirected (HTTP 308)"),
]


async def test_a_redirect_fails_at_once_and_is_not_followed(
    httpx_mock: HTTPXMock, gateway: HttpSmsGateway, sleep: FakeSleep
) -> None:
    for sent, (status, location, error) in enumerate(REDIRECTS, start=1):
        httpx_mock.add_response(status_code=status, headers={"Location": location})
        result = await gateway.send(NUMBER, "t", reference="r")
        assert result.status is SmsStatus.FAILED and not result.retryable
        assert result.error == f"{error}; redirects are not followed"
        assert NUMBER not in result.error
        assert [str(r.url) for r in httpx_mock.get_requests()] == [URL] * sent  # one each
    assert sleep.calls == []
