"""Console SMS backend, the factory, number checks and the status callback parser."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from datetime import datetime
from pathlib import Path

import pytest

from node.config import SmsConfig
from node.sms import (
    ConsoleSmsGateway,
    HttpSmsGateway,
    SmsCallbackAuthError,
    SmsCallbackError,
    SmsStatus,
    make_gateway,
    mask_number,
    parse_status_callback,
    read_console_outbox,
)

NUMBER = "+33612345678"


# -- console backend ---------------------------------------------------------


async def test_console_writes_full_number_and_logs_masked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = make_gateway(SmsConfig(), tmp_path)
    assert isinstance(gateway, ConsoleSmsGateway)
    assert gateway.name == "console"

    result = await gateway.send(NUMBER, "Votre code Carnet : 123456", reference="msg-1")
    await gateway.aclose()

    assert result.status is SmsStatus.SENT
    assert result.provider_id and result.error is None and not result.retryable
    [line] = read_console_outbox(tmp_path)
    assert set(line) == {"at", "to", "text", "reference", "urgent"} and line["urgent"] is False
    assert line["to"] == NUMBER
    assert line["text"] == "Votre code Carnet : 123456"
    assert line["reference"] == "msg-1"
    at = datetime.fromisoformat(line["at"])
    assert at.utcoffset() is not None and at.utcoffset().total_seconds() == 0

    records = [r for r in caplog.records if r.name == "carnet.sms"]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    message = records[0].getMessage()
    assert "•• •• •• •• 78" in message
    assert "123456" in message  # the text is shown; it is the development phone
    for record in caplog.records:
        assert "612345678" not in record.getMessage()


async def test_console_file_mode_0600(tmp_path: Path) -> None:
    gateway = ConsoleSmsGateway(tmp_path / "new-dir")
    await gateway.send(NUMBER, "hello", reference="r")
    mode = stat.S_IMODE((tmp_path / "new-dir" / "sms-outbox.jsonl").stat().st_mode)
    assert mode == 0o600


async def test_console_tightens_existing_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "sms-outbox.jsonl"
    path.write_text("")
    path.chmod(0o644)
    await ConsoleSmsGateway(tmp_path).send(NUMBER, "hello", reference="r")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_console_concurrent_sends_never_interleave(tmp_path: Path) -> None:
    gateway = ConsoleSmsGateway(tmp_path)
    text = "x" * 3000 + "\nligne 2 é"  # long and multi-line: still one JSON line
    results = await asyncio.gather(
        *(gateway.send(f"+336123456{i:02d}", text, reference=f"ref-{i}") for i in range(50))
    )
    assert all(r.status is SmsStatus.SENT for r in results)
    assert len({r.provider_id for r in results}) == 50

    raw = (tmp_path / "sms-outbox.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(raw) == 50
    lines = [json.loads(item) for item in raw]
    assert {line["reference"] for line in lines} == {f"ref-{i}" for i in range(50)}
    assert all(line["text"] == text for line in lines)
    assert {line["to"] for line in lines} == {f"+336123456{i:02d}" for i in range(50)}


async def test_console_unwritable_outbox_fails_retryable(tmp_path: Path) -> None:
    (tmp_path / "sms-outbox.jsonl").mkdir()  # a directory where the file should be
    result = await ConsoleSmsGateway(tmp_path).send(NUMBER, "hello", reference="r")
    assert result.status is SmsStatus.FAILED and result.retryable
    assert result.error and "612345678" not in result.error


def test_read_console_outbox_missing_file(tmp_path: Path) -> None:
    assert read_console_outbox(tmp_path) == []


@pytest.mark.parametrize(
    "bad",
    [
        "0612345678",
        "+3361234",  # 7 digits
        "+1234567890123456",  # 16 digits
        "+33 612345678",
        "+33612345678\n",
        "+0612345678",
        "+٣٣٦١٢٣٤٥٦٧٨",  # non-ASCII digits
        "",
    ],
)
async def test_console_rejects_non_e164(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="E.164"):
        await ConsoleSmsGateway(tmp_path).send(bad, "hello", reference="r")
    assert read_console_outbox(tmp_path) == []


def test_mask_number_shows_only_last_two_digits() -> None:
    assert mask_number(NUMBER) == "•• •• •• •• 78"
    assert mask_number("+4915112345699") == "•• •• •• •• 99"


# -- factory -----------------------------------------------------------------


async def test_make_gateway_http(tmp_path: Path) -> None:
    gateway = make_gateway(SmsConfig(backend="http", http_url="https://sms.test/send"), tmp_path)
    assert isinstance(gateway, HttpSmsGateway) and gateway.name == "http"
    await gateway.aclose()


def test_make_gateway_http_without_url(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="http_url"):
        make_gateway(SmsConfig(backend="http"), tmp_path)


def test_make_gateway_unknown_backend(tmp_path: Path) -> None:
    config = SmsConfig()
    config.backend = "carrier-pigeon"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="unknown SMS backend"):
        make_gateway(config, tmp_path)


# -- status callbacks --------------------------------------------------------

SECRET = "s3cret-callback-token"
CONFIG = SmsConfig(status_secret=SECRET)
GOOD_HEADERS = {"X-Carnet-Sms-Secret": SECRET}


def _body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize("status", ["sent", "delivered", "undelivered", "failed"])
def test_callback_good(status: str) -> None:
    body = _body(reference="msg-42", status=status, extra="ignored")
    assert parse_status_callback(CONFIG, GOOD_HEADERS, body) == ("msg-42", SmsStatus(status))


def test_callback_header_name_is_case_insensitive() -> None:
    headers = {"x-carnet-sms-secret": SECRET}
    body = _body(reference="m", status="delivered")
    assert parse_status_callback(CONFIG, headers, body) == ("m", SmsStatus.DELIVERED)


@pytest.mark.parametrize(
    "headers", [{"X-Carnet-Sms-Secret": "wrong"}, {}, {"X-Carnet-Sms-Secret": "sécret"}]
)
def test_callback_wrong_or_missing_secret(headers: dict[str, str]) -> None:
    with pytest.raises(SmsCallbackAuthError, match="X-Carnet-Sms-Secret"):
        parse_status_callback(CONFIG, headers, _body(reference="m", status="delivered"))


def test_callback_refused_when_secret_not_configured() -> None:
    for headers in ({"X-Carnet-Sms-Secret": ""}, {}):
        with pytest.raises(SmsCallbackAuthError, match="disabled"):
            parse_status_callback(SmsConfig(), headers, _body(reference="m", status="sent"))


def test_callback_errors_are_value_errors() -> None:
    assert issubclass(SmsCallbackAuthError, SmsCallbackError)
    assert issubclass(SmsCallbackError, ValueError)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid UTF-8 JSON"),
        (b"\xff\xfe", "not valid UTF-8 JSON"),
        (b"[" * 3000 + b"]" * 3000, "larger than"),
        (b"[" * 2000 + b"]" * 2000, "not valid UTF-8 JSON"),  # nesting bomb under 4 KiB
        (b'["delivered"]', "JSON object"),
        (_body(status="delivered"), "reference"),
        (_body(reference="", status="delivered"), "reference"),
        (_body(reference=7, status="delivered"), "reference"),
        (_body(reference="r" * 257, status="delivered"), "reference longer"),
        (_body(reference="m"), "status"),
        (_body(reference="m", status="read"), "unknown status"),
        (_body(reference="m", status="queued"), "unknown status"),
        (_body(reference="m", status=None), "status"),
        (_body(reference="m", status="delivered", pad="x" * 4096), "larger than 4096"),
    ],
)
def test_callback_bad_body(body: bytes, message: str) -> None:
    with pytest.raises(SmsCallbackError, match=message) as info:
        parse_status_callback(CONFIG, GOOD_HEADERS, body)
    assert not isinstance(info.value, SmsCallbackAuthError)


def test_callback_body_of_exactly_4_kib_is_accepted() -> None:
    base = _body(reference="m", status="delivered", pad="")
    body = base.replace(b'"pad": ""', b'"pad": "' + b"x" * (4096 - len(base)) + b'"')
    assert len(body) == 4096
    assert parse_status_callback(CONFIG, GOOD_HEADERS, body) == ("m", SmsStatus.DELIVERED)
