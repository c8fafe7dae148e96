#!/usr/bin/env python3
"""Benchmark the costs of authentication on this machine and print a table.

    .venv/bin/python scripts/bench/auth.py [--logins 60] [--concurrency 8]

1. Argon2id verification of a login secret (m = 19 MiB, t = 2), the node's
   share of every login; design goal P6: p95 ≤ 60 ms, run off the event loop.
2. Full passphrase logins over HTTP against a real ``carnet serve`` process on
   127.0.0.1 (prelogin + login; the client's PBKDF2 is computed once, as a
   browser would per person, and not timed), sequential then concurrent.
3. Page requests (``/healthz`` and a logged-in ``/account``) while idle.

Reports medians and p95 in milliseconds; numbers vary with the machine, so
compare runs on the same machine only.  Traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from node.refclient import login_secret
from node.services.credentials import hash_login_secret, verify_login_secret


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(name: str, samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return f"| {name:<46} | {len(ms):>5} | {statistics.median(ms):>8.1f} | {pct(ms, 0.95):>8.1f} |"


def bench_argon2(runs: int) -> list[float]:
    secret = os.urandom(32)
    verifier = hash_login_secret(secret)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        assert verify_login_secret(verifier, secret)
        times.append(time.perf_counter() - start)
    return times


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def one_login(client: httpx.AsyncClient, login: str, secrets: dict[str, str]) -> float:
    start = time.perf_counter()
    session = (await client.get("/api/v1/session")).json()
    headers = {"X-CSRF-Token": session["csrf_token"]}
    pre = (
        await client.post("/api/v1/auth/prelogin", json={"login": login}, headers=headers)
    ).json()
    key = f"{pre['salt']}:{pre['iterations']}"
    if key not in secrets:  # the browser's PBKDF2, once per person: not part of the node's cost
        pause = time.perf_counter()
        secrets[key] = login_secret("demo passphrase for carnet", pre["salt"], pre["iterations"])
        start += time.perf_counter() - pause
    response = await client.post(
        "/api/v1/auth/login", json={"login": login, "login_secret": secrets[key]}, headers=headers
    )
    response.raise_for_status()
    return time.perf_counter() - start


async def bench_http(url: str, logins: int, concurrency: int) -> dict[str, list[float]]:
    secrets: dict[str, str] = {}
    results: dict[str, list[float]] = {}
    async with httpx.AsyncClient(base_url=url) as client:
        await one_login(client, "06 39 98 00 01", secrets)  # warm-up
        results["login, sequential"] = [
            await one_login(client, "06 39 98 00 01", secrets) for _ in range(logins)
        ]

    async def worker(n: int) -> list[float]:
        async with httpx.AsyncClient(base_url=url) as client:
            return [await one_login(client, "06 39 98 00 03", secrets) for _ in range(n)]

    per = max(1, logins // concurrency)
    await one_login(httpx.AsyncClient(base_url=url), "06 39 98 00 03", secrets)
    batches = await asyncio.gather(*(worker(per) for _ in range(concurrency)))
    results[f"login, {concurrency} clients at once"] = [t for b in batches for t in b]

    async with httpx.AsyncClient(base_url=url) as client:
        await one_login(client, "dubois@demo.carnet.test", secrets)
        for path in ("/healthz", "/account"):
            times = []
            for _ in range(200):
                start = time.perf_counter()
                (await client.get(path)).raise_for_status()
                times.append(time.perf_counter() - start)
            results[f"GET {path}"] = times
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    lines = ["| measurement | n | median ms | p95 ms |", "|---|---:|---:|---:|"]
    lines.append(row("Argon2id verify (m=19 MiB, t=2)", bench_argon2(50)))

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        data = str(Path(tmp) / "node")
        carnet = [sys.executable, "-m", "node.cli"]
        subprocess.run(
            [*carnet, "init", "--data", data, "--url", url, "--bind", f"127.0.0.1:{port}"],
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        subprocess.run([*carnet, "demo", "--data", data], check=True, capture_output=True)
        server = subprocess.Popen(
            [*carnet, "serve", "--data", data],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "CARNET_LOG_LEVEL": "WARNING"},
        )
        try:
            for _ in range(100):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            results = asyncio.run(bench_http(url, args.logins, args.concurrency))
        finally:
            server.terminate()
            server.wait(timeout=10)
    for name, samples in results.items():
        lines.append(row(name, samples))
    cpu = re.sub(
        r"\s+",
        " ",
        Path("/proc/cpuinfo").read_text().split("model name")[1].split("\n")[0].strip(": "),
    )
    print(f"Carnet auth benchmark — {os.cpu_count()} cores, {cpu}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
