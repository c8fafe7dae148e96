"""Browser tests: a real ``carnet serve`` process and Debian's Chromium driven by Playwright.

The node runs in its own process with its own data folder on 127.0.0.1, as a
school would run it; the console SMS backend writes texts to
``sms-outbox.jsonl``, which plays the parents' phones.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServedNode:
    url: str
    data_dir: Path
    admin_setup_url: str
    process: subprocess.Popen[bytes]

    def sms_codes_for(self, phone_e164: str) -> list[str]:
        path = self.data_dir / "sms-outbox.jsonl"
        if not path.exists():
            return []
        codes = []
        for line in path.read_text().splitlines():
            try:
                text = json.loads(line)
            except json.JSONDecodeError:  # a line being written right now
                continue
            if text["to"] == phone_e164:
                match = re.search(r"\b(\d{6})\b", text["text"])
                if match:
                    codes.append(match[1])
        return codes

    def wait_for_sms(self, phone_e164: str, count: int, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            codes = self.sms_codes_for(phone_e164)
            if len(codes) >= count:
                return codes[count - 1]
            time.sleep(0.1)
        raise AssertionError(f"no SMS number {count} arrived for the test phone")


def _carnet(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "node.cli", *args], capture_output=True, text=True, check=True
    )
    return result.stdout


@contextmanager
def start_node(
    tmp_path: Path, prepare: Callable[[Path], None] | None = None
) -> Iterator[ServedNode]:
    """``carnet init`` a data folder, let ``prepare(data_dir)`` seed it, then ``carnet serve`` it."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "school"
    out = _carnet(
        "init",
        "--data",
        str(data_dir),
        "--school",
        "École Jules Ferry",
        "--url",
        url,
        "--bind",
        f"127.0.0.1:{port}",
        "--admin-email",
        "direction@ecole.test",
        "--admin-name",
        "Claire Directrice",
    )
    setup_url = re.search(r"(http://\S+/setup/\S+)", out)
    assert setup_url is not None, out
    if prepare is not None:
        prepare(data_dir)
    env = {**os.environ, "CARNET_DEFAULT_LOCALE": "en"}
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "node.cli", "serve", "--data", str(data_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError((tmp_path / "server.log").read_text())
        time.sleep(0.1)
    try:
        yield ServedNode(url, data_dir, setup_url[1], process)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@contextmanager
def seeded_node(tmp_path: Path, module: str) -> Iterator[tuple[ServedNode, dict[str, Any]]]:
    """A node whose data folder ``python -m <module> <data dir>`` seeded first (in its own
    process: one database per process); yields it with the JSON that module printed last."""
    seeded: dict[str, Any] = {}

    def prepare(data_dir: Path) -> None:
        out = subprocess.run(
            [sys.executable, "-m", module, str(data_dir)],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        ).stdout
        seeded.update(json.loads(out.strip().splitlines()[-1]))

    with start_node(tmp_path, prepare) as node:
        yield node, seeded


@pytest.fixture
def served_node(tmp_path: Path) -> Iterator[ServedNode]:
    with start_node(tmp_path) as node:
        yield node


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Chromium for one test.

    Function-scoped on purpose: sync Playwright keeps an asyncio loop running
    while it is open, which would break the async tests that run after it in
    the same worker.
    """
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def new_page(browser: Browser, locale: str = "en-GB", **options: Any) -> Page:
    """A fresh browser profile (its own cookies and IndexedDB), like another person's phone.

    ``options`` go to ``Browser.new_context`` (``is_mobile=True``, ``accept_downloads``…).
    """
    options.setdefault("viewport", {"width": 390, "height": 844})
    context = browser.new_context(locale=locale, **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
