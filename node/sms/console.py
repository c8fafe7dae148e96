"""Console SMS backend: the text goes to the log and to a JSON-lines outbox file.

Layer rule: this package does I/O for SMS only; it knows nothing of accounts or
the database; callers pass text and a number.

``data_dir / "sms-outbox.jsonl"`` plays the phone in development, the demo and
the tests: each text becomes one line
``{"at": ISO-8601 UTC, "to": full E.164, "text": ..., "reference": ...}``, which
:func:`read_console_outbox` reads back (a test or the demo finds the SMS code
there).  The file holds full phone numbers, so it is created with mode 0600.
Each line is written with a single ``write`` on a descriptor opened with
``O_APPEND``, so concurrent writers (threads or processes) never interleave.

The log line (logger ``carnet.sms``, INFO) shows the text but only the last two
digits of the number.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node.sms.gateway import SmsResult, SmsStatus, check_e164, mask_number

log = logging.getLogger("carnet.sms")

#: File name of the console outbox inside the data folder.
OUTBOX_NAME = "sms-outbox.jsonl"

_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


def _append_line(path: Path, line: bytes) -> None:
    """Append one line atomically (one write on an O_APPEND descriptor), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, _OPEN_FLAGS, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
        written = os.write(fd, line)
        if written != len(line):  # only on a full disk or similar; never split silently
            raise OSError(f"short write to {path.name} ({written} of {len(line)} bytes)")
    finally:
        os.close(fd)


class ConsoleSmsGateway:
    """Development gateway: logs the text (masked number) and appends it to the outbox."""

    name: str = "console"

    def __init__(self, data_dir: Path) -> None:
        self.outbox = Path(data_dir) / OUTBOX_NAME

    async def send(self, to: str, text: str, *, reference: str, urgent: bool = False) -> SmsResult:
        check_e164(to)
        record = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "to": to,
            "text": text,
            "reference": reference,
            "urgent": urgent,
        }
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            await asyncio.to_thread(_append_line, self.outbox, line)
        except OSError as exc:
            log.error(
                "SMS to %s (ref %s) not written to the outbox: %s",
                mask_number(to),
                reference,
                type(exc).__name__,
            )
            reason = exc.strerror or type(exc).__name__
            error = f"console outbox not writable ({reason})"
            return SmsResult(SmsStatus.FAILED, None, error, True)
        log.info("SMS to %s (ref %s): %s", mask_number(to), reference, text)
        return SmsResult(SmsStatus.SENT, "console-" + secrets.token_hex(8), None, False)

    async def aclose(self) -> None:
        return None


def read_console_outbox(data_dir: Path) -> list[dict[str, Any]]:
    """Every text the console backend wrote to ``data_dir``, oldest first ([] if none)."""
    path = Path(data_dir) / OUTBOX_NAME
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in content.splitlines() if line.strip()]
