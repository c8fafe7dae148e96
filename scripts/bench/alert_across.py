#!/usr/bin/env python3
"""Benchmark a lockdown alert to a school of 2,000 guardians living on three nodes.

    .venv/bin/python scripts/bench/alert_across.py [--families 2000] [--runs 3]
        [--ackers 100] [--seed-cache DIR] [--json out.json]

Issue 5: "a school of 2,000 guardians across three nodes receives a lockdown
alert; all recipients get it; acknowledgements from all nodes appear on the
dashboard".  Three real ``carnet serve`` processes on 127.0.0.1, SQLite each:
A (the school) and B, C (home nodes of some of its families).  Half the
``--families`` guardians live on A, a quarter on B and a quarter on C; each
guardian of B or C is a guardian of a child of A's class, as if they had
joined it from their own node (NP/1 §9.2).  Every guardian has one push
subscription, on the fake push service of their own node (``push.py``'s,
one process per node, so each node's fan-out is timed on its own).

Seeding (in-process, through each node's services and storage, one node's
database open at a time; cached with ``--seed-cache``):

1. ``carnet init`` each node, an admin with keys on each (in-process);
2. the nodes serve; A's admin peers with B's and C's through the admin API
   (both ways, fingerprints confirmed); the nodes stop;
3. B and C: their guardians, each onboarded as ``feed.py`` seeds families (a
   child in a class of their own school, the shared-passphrase shortcut: one
   PBKDF2 for all, every one can still log in) and subscribed to push;
4. A: a class, its local families (the same way), and for each guardian of
   B and C a child, the teacher's slip, and what a confirmed and approved
   join leaves: the ``remote`` shadow account ``np:<id>@<host>`` with their
   keys and home peer, the guardianship, the slip used, a ``remote_follow``
   row in state ``accepted``;
5. B and C: each guardian's ``join_request`` as the Accept leaves it
   (``accepted``, the class and child URLs) and the class's mirror, made by
   ``mirrors.accepted`` from what the Accept carries;
6. the nodes serve; A's admin sets up the school's alert group through A's
   JSON API (the reference client: every guardian, local and remote, added
   in chunks), A sends B and C the group log and their keys on its alerts
   stream; once both hold every key of theirs, the nodes stop.

Measured, for ``--runs`` drill alerts after one warm-up, each closed by an
all clear (pushed too, waited for, not measured):

- commit: A's ``POST /api/v1/alerts``, sent to answered;
- every push accepted: from sending until each node's push service has
  accepted a push for every guardian of that node (A's, B's, C's), and all;
- federation lag: until a guardian of B (of C) can ``GET`` the alert on B (C);
- acknowledgements: ``--ackers`` guardians per node (default 100, 0: all),
  logged in through each node's JSON API before the runs, each ``POST
  /api/v1/alerts/{id}/ack`` on their own node (20 at a time per node) once
  their node has the alert; timed from the first ack sent until A's ``GET
  /api/v1/alerts/{id}/reach`` counts them all (per node, from the dashboard's
  guardian names, and all).  B's and C's go back to A as ``Read`` activities.

Each run checks that A's answer counts every guardian as a recipient, every
push service got a push for every guardian of its node, and A's dashboard
counts every acknowledgement.  Servers, push services and temporary
folders are removed on exit, Ctrl-C included; traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (keys as JSON, cached folders, the schema's hash)
import feed  # noqa: E402  (nodes, browsers, the seeded families)
import push as push_bench  # noqa: E402  (the fake push service)

from node import refclient_groups as rc  # noqa: E402
from node.e2e.encoding import b64url_encode  # noqa: E402
from node.refclient import new_account  # noqa: E402
from node.services import accounts, directory, mirrors  # noqa: E402
from node.services.context import Actor  # noqa: E402
from node.storage import accounts as account_store  # noqa: E402
from node.storage import directory as directory_store  # noqa: E402
from node.storage import peers as peer_store  # noqa: E402
from node.storage import remote_join as join_store  # noqa: E402
from node.storage.db import write_transaction  # noqa: E402

NAMES = ("a", "b", "c")
ADMIN_LOGIN = "direction@{}.bench.carnet.test"
CLASS = "CM2 A"
#: seconds any one phase may take before the benchmark gives up
CEILING = 600.0
#: the remote guardians' numbers on A's slips: 06 39 9x xx xx, x per home node
PHONE_DIGIT = {"b": 7, "c": 6}
#: guardians added per request: the node's request size limit (max_request_bytes) refuses
#: a few thousand entries and envelopes in one body (the service alone would take 5,000)
ADD_CHUNK = 200
#: seconds B and C may take to apply A's alert group log while seeding (2,000 members: minutes)
SEED_CEILING = 3600.0
#: acknowledgements sent at once per node
ACK_CONCURRENCY = 20

now = common.now
progress = feed.progress


@dataclass
class Options:
    families: int
    runs: int
    ackers: int
    seed_cache: Path | None
    logs: Path | None = None
    pg_server: None = None


def split(families: int) -> dict[str, int]:
    """Half on A, a quarter on B and C (at least one each)."""
    b = c = max(1, families // 4)
    return {"a": families - b - c, "b": b, "c": c}


# --------------------------------------------------------------------------- nodes


def init_node(node: feed.Node) -> None:
    """``carnet init`` only (``feed.Node.init`` also opens the database: one node per process)."""
    command = [sys.executable, "-m", "node.cli", "init", "--data", str(node.data)]
    command += ["--url", node.url, "--bind", f"127.0.0.1:{node.port}"]
    command += ["--school", f"École {node.name.upper()}"]
    subprocess.run(command, check=True, capture_output=True, stdin=subprocess.DEVNULL)


@contextlib.contextmanager
def opened(node: feed.Node) -> Any:
    """The node's database bound to the models while inside (one node at a time)."""
    common.open_copy(node)
    try:
        yield node.ctx, node.storage.call  # type: ignore[union-attr]
    finally:
        assert node.storage is not None
        node.storage.close()
        node.storage = None


def halt(node: feed.Node) -> None:
    """Stop the server only (``feed.Node.stop`` also closes the storage)."""
    if node.server is not None:
        node.server.terminate()
        try:
            node.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node.server.kill()
            node.server.wait()
        node.server = None


def serve_all(nodes: dict[str, feed.Node]) -> None:
    """Start the nodes together (each waits for its ``/healthz``)."""
    with ThreadPoolExecutor(len(nodes)) as pool:
        list(pool.map(feed.Node.serve, nodes.values()))


def halt_all(nodes: dict[str, feed.Node]) -> None:
    with ThreadPoolExecutor(len(nodes)) as pool:
        list(pool.map(halt, nodes.values()))


def keep_logs(nodes: dict[str, feed.Node], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n, node in nodes.items():
        with contextlib.suppress(OSError):
            shutil.copy(node.log, folder / f"{n}.log")


def host(node: feed.Node) -> str:
    return node.url.split("://", 1)[1]


# --------------------------------------------------------------------------- seeding


def make_admin(node: feed.Node) -> dict[str, Any]:
    login = ADMIN_LOGIN.format(node.name)
    with opened(node) as (ctx, call):
        _, token = call(accounts.create_staff, ctx, None, "admin", f"Direction {node.name}", login)
        client = new_account(login, feed.PASSPHRASE, ctx.config.kdf_iterations)
        admin = call(accounts.complete_setup, ctx, token, client.credentials, "carnet bench").actor
        call(accounts.logout, ctx, admin)
    return {
        "login": login,
        "account_id": admin.account_id,
        "keys": common.keys_to_json(client.keys),
    }


async def log_in(url: str, login: str, secrets: dict[str, str]) -> feed.Browser:
    browser = feed.Browser(url)
    await browser.login(login, await feed.prelogin_secret(url, login, secrets))
    return browser


async def peer_schools(nodes: dict[str, feed.Node], admins: dict[str, Any]) -> None:
    """A adds B and C, and each of them adds A, as the admins' pages do (fingerprints confirmed)."""
    secrets: dict[str, str] = {}
    browsers = {n: await log_in(nodes[n].url, admins[n]["login"], secrets) for n in NAMES}
    try:
        for one, two in (("a", "b"), ("b", "a"), ("a", "c"), ("c", "a")):
            b = browsers[one]
            headers = {"X-CSRF-Token": b.csrf}
            view = await b.client.post(
                "/api/v1/admin/peers", json={"origin": nodes[two].url}, headers=headers
            )
            view.raise_for_status()
            shown = [k["fingerprint"] for k in view.json()["keys"] if k["current"]]
            done = await b.client.post(
                f"/api/v1/admin/peers/{view.json()['id']}/confirm",
                json={"fingerprints": shown}, headers=headers,
            )  # fmt: skip
            done.raise_for_status()
            assert done.json()["state"] == "active", done.text
    finally:
        await asyncio.gather(*(b.close() for b in browsers.values()))


def family_json(f: feed.Family) -> dict[str, Any]:
    return {"login": f.login, "account_id": f.account_id, "keys": common.keys_to_json(f.keys),
            "child_id": f.child_id, "push_path": f.push_path}  # fmt: skip


def seed_families(
    node: feed.Node, admin: dict[str, Any], count: int, push_url: str, class_name: str
) -> tuple[int, list[dict[str, Any]]]:
    """A class (its teacher: the admin) and ``count`` onboarded guardians with push; (class id, families)."""
    with opened(node) as (ctx, call):
        actor = Actor(admin["account_id"], "admin", "")
        school_class = call(directory.create_class, ctx, actor, class_name)
        shared = feed.SharedPassphrase(ctx.config.kdf_iterations)
        families = []
        started = time.perf_counter()
        with shared.cheap_verifier():
            for i in range(count):
                f = call(feed._family, ctx, actor, school_class.id, i, shared, push_url)
                families.append(family_json(f))
                if (i + 1) % 250 == 0:
                    progress(
                        f"  {node.name}: {i + 1} families ({time.perf_counter() - started:.0f} s)"
                    )
        return school_class.id, families


def seed_remote_guardians(
    a: feed.Node, admin: dict[str, Any], class_id: int, homes: dict[str, feed.Node],
    remote: dict[str, list[dict[str, Any]]],
) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """On A: for each guardian of B and C, a child and what their confirmed, approved join leaves."""
    joined: dict[str, list[dict[str, Any]]] = {}
    with opened(a) as (ctx, call):
        actor = Actor(admin["account_id"], "admin", "")

        def one(peer_id: int, home: feed.Node, i: int, f: dict[str, Any]) -> dict[str, Any]:
            with write_transaction():
                name = f"Parent {home.name.upper()}{i:04d}"
                child = directory.add_child(
                    ctx, actor, class_id, f"Enfant{home.name.upper()}{i:04d}", "Banc"
                )
                phone = f"+336399{PHONE_DIGIT[home.name]}{i:04d}"
                slip = directory.register_guardian(ctx, actor, child.id, name, phone)
                keys = common.keys_from_json(f["keys"])
                member = f"{f['account_id']}@{host(home)}"
                sign_pk, enc_pk = b64url_encode(keys.sign_pk), b64url_encode(keys.enc_pk)
                account = account_store.insert_remote_guardian(
                    directory_store.REMOTE_LOGIN_PREFIX + member, name, sign_pk, enc_pk, peer_id,
                    ctx.now(),
                )  # fmt: skip
                invitation = directory_store.GuardianInvitation.get_by_id(slip.invitation_id)
                directory_store.Guardianship.create(
                    child=child.id, account=account, invitation=invitation, created_at=ctx.now()
                )
                invitation.used_at, invitation.account = ctx.now(), account
                invitation.code_hash = None
                invitation.save()
                follow_id = f"{home.url}/np/joins/bench{i:06d}"
                join_store.RemoteFollow.create(
                    follow_id=follow_id, peer=peer_id, actor=f"{home.url}/users/{f['account_id']}",
                    member=member, school_class=class_id, invitation=invitation, attempt=None,
                    account=account, sign_pk=sign_pk, enc_pk=enc_pk, state="accepted",
                    created_at=ctx.now(), updated_at=ctx.now(),
                )  # fmt: skip
                return {"follow_id": follow_id, "child_id": child.id, "child_name": child.first_name,
                        "name": name}  # fmt: skip

        for n, home in homes.items():
            peer = call(peer_store.select_peer_by_origin, home.url)
            assert peer is not None, f"A has no peer row for {home.url}"
            joined[n] = [call(one, peer.id, home, i, f) for i, f in enumerate(remote[n])]
    return joined


def seed_mirror(
    home: feed.Node, a: feed.Node, admin_a: dict[str, Any], class_id: int,
    families: list[dict[str, Any]], joined: list[dict[str, Any]],
) -> None:  # fmt: skip
    """On B (C): each guardian's request as the Accept leaves it, and the class's mirror."""
    class_url = f"{a.url}/classes/{class_id}"
    with opened(home) as (ctx, call):
        peer = call(peer_store.select_peer_by_origin, a.url)
        assert peer is not None, f"{home.name} has no peer row for {a.url}"

        def one(f: dict[str, Any], j: dict[str, Any]) -> None:
            info = {
                "name": CLASS, "schoolYear": "", "school": "École A",
                "teacherName": "Direction a", "commentsEnabled": True,
                "teacher": f"{admin_a['account_id']}@{host(a)}",
                "child": {"id": f"{class_url}/children/{j['child_id']}", "name": j["child_name"]},
            }  # fmt: skip
            with write_transaction():
                join_store.JoinRequest.create(
                    account=f["account_id"], peer=peer.id, follow_id=j["follow_id"],
                    join_id="bench", state="accepted", masked_phone="+33 6 •• •• •• ••",
                    school_name="École A", class_name=CLASS, child_first_name=j["child_name"],
                    class_url=class_url, child_url=info["child"]["id"],  # type: ignore[index]
                    created_at=ctx.now(), updated_at=ctx.now(),
                )  # fmt: skip
                mirrors.accepted(ctx, peer.id, class_url, f["account_id"], info)

        for f, j in zip(families, joined, strict=True):
            call(one, f, j)


async def school_group(a: feed.Node, admin: dict[str, Any]) -> dict[str, Any]:
    """A's admin sets up the alert group and adds every guardian, through A's JSON API."""
    keys = common.keys_from_json(admin["keys"])
    browser = await log_in(a.url, admin["login"], {})
    try:
        headers = {"X-CSRF-Token": browser.csrf}
        view = (await browser.client.get("/api/v1/school-group")).json()
        me = view["me"]
        log, envelopes, epoch_key = rc.setup_school_group(keys, me)
        made = await browser.client.post(
            "/api/v1/school-group", json={"entries": log, "envelopes": envelopes}, headers=headers
        )
        made.raise_for_status()
        view = (await browser.client.get("/api/v1/school-group")).json()
        candidates, entries = view["add"], view["entries"]
        for start in range(0, len(candidates), ADD_CHUNK):
            new, sealed = rc.add_guardians(
                keys, entries, candidates[start : start + ADD_CHUNK], epoch_key
            )
            done = await browser.client.post(
                "/api/v1/school-group/entries", json={"entries": new, "envelopes": sealed},
                headers=headers,
            )  # fmt: skip
            done.raise_for_status()
            entries = entries + new
        left = (await browser.client.get("/api/v1/school-group")).json()
        if left["add"] or left["remove"]:
            raise RuntimeError(f"alert group: {len(left['add'])} still to add")
        return {"group_id": view["group_id"], "members": len(candidates) + 1, "admin_me": me,
                "guardians": len(candidates)}  # fmt: skip
    finally:
        await browser.close()


def keys_held(node: feed.Node) -> int:
    """Envelopes of the mirrored school group the home node holds (its own SQLite, read only)."""
    path = node.data / "carnet.sqlite3"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        row = db.execute(
            "SELECT COUNT(*) FROM school_group_envelope e JOIN school_group g ON e.group_id = g.id "
            "WHERE g.peer_id IS NOT NULL"
        ).fetchone()
    return int(row[0])


def wait_for(what: str, predicate: Any, timeout: float = CEILING, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(every)


def seed(
    root: Path, families: int, push_urls: dict[str, str]
) -> tuple[dict[str, feed.Node], dict[str, Any]]:
    """Three seeded data folders (nobody serving them) and what the clients must remember."""
    started = time.perf_counter()
    sizes = split(families)
    nodes = {n: feed.Node(root, n, None) for n in NAMES}
    for node in nodes.values():
        init_node(node)
    admins = {n: make_admin(nodes[n]) for n in NAMES}
    progress("seeding: nodes initialised, admins made; peering A with B and C")
    try:
        serve_all(nodes)
        asyncio.run(peer_schools(nodes, admins))
    finally:
        halt_all(nodes)
    classes, fams = {}, {}
    for n in ("b", "c", "a"):
        progress(f"seeding: {sizes[n]} guardians on {n}")
        classes[n], fams[n] = seed_families(
            nodes[n],
            admins[n],
            sizes[n],
            push_urls[n],
            CLASS if n == "a" else f"Classe {n.upper()}",
        )
    progress("seeding: the joins of B's and C's guardians, on A")
    homes = {n: nodes[n] for n in ("b", "c")}
    joined = seed_remote_guardians(nodes["a"], admins["a"], classes["a"], homes, fams)
    for n in ("b", "c"):
        progress(f"seeding: the mirror of A's class on {n}")
        seed_mirror(nodes[n], nodes["a"], admins["a"], classes["a"], fams[n], joined[n])
    progress("seeding: A's alert group (through A's API); B and C get its log and keys")
    try:
        serve_all(nodes)
        group = asyncio.run(school_group(nodes["a"], admins["a"]))
        applying = time.perf_counter()
        for n in ("b", "c"):  # each applies the whole log, checking it from entry 0 each time
            wait_for(
                f"{n} holds the keys of its {sizes[n]} guardians",
                lambda n=n: keys_held(nodes[n]) >= sizes[n],  # type: ignore[misc]
                timeout=SEED_CEILING, every=1.0,
            )  # fmt: skip
        group["applied_seconds"] = round(time.perf_counter() - applying, 1)
        progress(f"  B and C hold the log and their keys after {group['applied_seconds']} s")
    finally:
        halt_all(nodes)
    seconds = round(time.perf_counter() - started, 1)
    progress(f"  seeded in {seconds} s")
    more = {"sizes": sizes, "admins": admins, "families": fams, "joined": joined,
            "class_id": classes["a"], "group": group, "seed_seconds": seconds}  # fmt: skip
    return nodes, more


def seeded(root: Path, families: int, cache: Path | None, push_urls: dict[str, str]) -> tuple[dict[str, feed.Node], dict[str, Any]]:  # fmt: skip
    """Seed, or copy the cached folders (the push endpoints pointed at this run's services)."""
    folder = cache / f"alert-across-{families}" if cache else None
    kept = folder / "seeded.json" if folder else None
    saved = json.loads(kept.read_text()) if kept is not None and kept.exists() else None
    if saved is not None and saved.get("schema") == common.schema_fingerprint():
        assert folder is not None
        nodes = {}
        for n in NAMES:
            nodes[n] = node = feed.Node(root, n, None)
            shutil.copytree(folder / n, node.data)
            common.open_copy(node)
            try:
                common.point_at(node, push_urls[n])
            finally:
                assert node.storage is not None
                node.storage.close()
                node.storage = None
        progress(f"reused the seeded folders {folder}")
        return nodes, saved["more"]
    if saved is not None:
        progress(f"the database migrations changed since {folder} was seeded")
    nodes, more = seed(root, families, push_urls)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for n, node in nodes.items():
            shutil.copytree(node.data, folder / n)
        assert kept is not None
        kept.write_text(json.dumps({"more": more, "schema": common.schema_fingerprint()}))
    return nodes, more


# --------------------------------------------------------------------------- measuring


async def first_get(browser: feed.Browser, alert_id: str, sent: float) -> float:
    """Seconds from ``sent`` until the guardian's node shows the alert."""
    deadline = now() + CEILING
    while now() < deadline:
        if (await browser.client.get(f"/api/v1/alerts/{alert_id}")).status_code == 200:
            return now() - sent
        await asyncio.sleep(0.01)
    raise TimeoutError(f"alert {alert_id} never showed")


def acked_by_node(reach: dict[str, Any]) -> dict[str, int]:
    """Acknowledged guardians on the dashboard, per node (A's names: 'Parent B0001' lives on B)."""
    counts = {n: 0 for n in NAMES}
    for school_class in reach["classes"]:
        for child in school_class["children"]:
            for guardian in child["guardians"]:
                if guardian["state"] == "acknowledged":
                    name = guardian["name"].removeprefix("Parent ")
                    counts[name[0].lower() if name[0] in "BC" else "a"] += 1
    return counts


async def one_alert(
    nodes: dict[str, feed.Node], services: dict[str, Any], more: dict[str, Any],
    admin: feed.Browser, crypto: tuple[Any, ...], ackers: dict[str, list[feed.Browser]], n: int,
) -> dict[str, Any]:  # fmt: skip
    keys, me, state, epoch_keys = crypto
    fams = more["families"]
    total = sum(more["sizes"].values())
    for name, service in services.items():
        service.expect([f["push_path"] for f in fams[name]])
    made = rc.encrypt_alert(
        keys, me, state, epoch_keys, "lockdown", f"Exercice de confinement n° {n}.", True, None
    )
    sent = now()
    response = await admin.client.post(
        "/api/v1/alerts", json={"message": made["message"], "template": "lockdown", "drill": True},
        headers={"X-CSRF-Token": admin.csrf},
    )  # fmt: skip
    answered = now()
    if response.status_code != 201:
        raise RuntimeError(f"alert refused: {response.status_code} {response.text}")
    answer = response.json()
    alert_id = answer["alert"]
    # A answers with every guardian the alert is for, on A, B and C
    total = sum(len(f) for f in fams.values())
    if answer["recipients"] != total or answer["state"] != "active":
        raise RuntimeError(f"the alert is for {answer['recipients']} of {total}: {answer}")
    pushes = asyncio.gather(*(asyncio.to_thread(s.wait, CEILING) for s in services.values()))
    lags = await asyncio.gather(*(first_get(ackers[h][0], alert_id, sent) for h in ("b", "c")))
    accepted = dict(zip(services, await pushes, strict=True))

    # the acknowledgements, each on the guardian's own node once it shows the alert there
    refused: list[str] = []

    async def ack(browser: feed.Browser, gate: asyncio.Semaphore) -> None:
        """As the guardian's page does, trying again (up to 5 times) after an error."""
        async with gate:
            for attempt in range(6):
                r = await browser.client.post(
                    f"/api/v1/alerts/{alert_id}/ack", headers={"X-CSRF-Token": browser.csrf}
                )
                if r.status_code == 200 and r.json().get("acknowledged") is True:
                    return
                refused.append(f"{browser.client.base_url} {r.status_code} {r.text[:200]}")
                await asyncio.sleep(0.2 * (attempt + 1))
            raise RuntimeError(f"ack refused 6 times: {refused[-1]}")

    expected = {h: len(b) for h, b in ackers.items()}
    ack_start = now()
    gates = {h: asyncio.Semaphore(ACK_CONCURRENCY) for h in ackers}
    acks = asyncio.gather(*(ack(b, gates[h]) for h, bs in ackers.items() for b in bs))
    seen: dict[str, float] = {}
    reach: dict[str, Any] = {}
    polls = 0
    sent_all = None
    while len(seen) < len(NAMES):
        if sent_all is None and acks.done():
            acks.result()
            sent_all = now()
        reach = (await admin.client.get(f"/api/v1/alerts/{alert_id}/reach")).json()
        polls += 1
        counts = acked_by_node(reach)
        for h in NAMES:
            if h not in seen and counts[h] >= expected[h]:
                seen[h] = now()
        if now() - ack_start > CEILING:
            raise TimeoutError(f"acknowledgements on A's dashboard: {counts} of {expected}")
        await asyncio.sleep(0.05)
    await acks
    sent_all = sent_all or now()
    if reach["acknowledged"] != sum(expected.values()) or reach["guardians"] != total:
        raise RuntimeError(
            f"A's dashboard: {reach['acknowledged']} acknowledged, {reach['guardians']} guardians"
        )

    # the all clear, pushed everywhere, waited for (not measured)
    for name, service in services.items():
        service.expect([f["push_path"] for f in fams[name]])
    clear = rc.encrypt_alert(
        keys, me, state, epoch_keys, "all_clear", "Fin de l'exercice.", True, alert_id
    )
    done = await admin.client.post(
        f"/api/v1/alerts/{alert_id}/messages",
        json={"message": clear["message"], "template": "all_clear"}, headers={"X-CSRF-Token": admin.csrf},
    )  # fmt: skip
    if done.status_code != 201:
        raise RuntimeError(f"all clear refused: {done.status_code} {done.text}")
    await asyncio.gather(*(asyncio.to_thread(s.wait, CEILING) for s in services.values()))

    def ms(seconds: float) -> float:
        return round(seconds * 1000, 1)

    every = {h: ms(accepted[h]["last"] - sent) for h in NAMES}
    return {
        "alert": alert_id,
        "recipients": answer["recipients"],
        "commit_ms": ms(answered - sent),
        "every_push_ms": {**every, "all": max(every.values())},
        "first_push_ms": {h: ms(accepted[h]["first"] - sent) for h in NAMES},
        "federation_lag_ms": {"b": ms(lags[0]), "c": ms(lags[1])},
        "acks_sent": sum(expected.values()),
        "acks_sent_ms": ms(sent_all - ack_start),
        "acks_on_dashboard_ms": {
            **{h: ms(seen[h] - ack_start) for h in NAMES},
            "all": ms(max(seen.values()) - ack_start),
        },  # fmt: skip
        "alert_to_all_acks_on_dashboard_ms": ms(max(seen.values()) - sent),
        "reach_polls": polls,
        # acknowledgements a node answered with an error (each tried again): node, status, body
        "ack_errors": len(refused),
        "ack_error_samples": sorted(set(refused))[:5],
        "dashboard": {
            k: reach.get(k) for k in ("guardians", "acknowledged", "delivered", "not_reached")
        },
    }


async def measure(nodes: dict[str, feed.Node], services: dict[str, Any], more: dict[str, Any], opts: Options) -> dict[str, Any]:  # fmt: skip
    admin_data = more["admins"]["a"]
    keys = common.keys_from_json(admin_data["keys"])
    secrets: dict[str, str] = {}
    admin = await log_in(nodes["a"].url, admin_data["login"], secrets)
    ackers: dict[str, list[feed.Browser]] = {}
    try:
        view = (await admin.client.get("/api/v1/school-group")).json()
        if view["add"] or view["remove"]:
            raise RuntimeError(f"the alert group is not up to date: {len(view['add'])} to add")
        state, epoch_keys = await asyncio.to_thread(rc.open_epoch_keys, view, keys)
        started = now()
        for h in NAMES:
            fams = more["families"][h]
            chosen = fams if opts.ackers <= 0 else fams[: opts.ackers]
            secret = await feed.prelogin_secret(nodes[h].url, chosen[0]["login"], {})
            ackers[h] = [feed.Browser(nodes[h].url) for _ in chosen]
            gate = asyncio.Semaphore(ACK_CONCURRENCY)

            async def login(b: feed.Browser, f: dict[str, Any], gate: asyncio.Semaphore = gate, secret: str = secret) -> None:  # fmt: skip
                async with gate:
                    await b.login(f["login"], secret)

            await asyncio.gather(*(login(b, f) for b, f in zip(ackers[h], chosen, strict=True)))
        progress(
            f"  {sum(len(b) for b in ackers.values())} guardians logged in ({now() - started:.0f} s)"
        )
        runs = []
        for n in range(opts.runs + 1):
            r = await one_alert(
                nodes, services, more, admin, (keys, view["me"], state, epoch_keys), ackers, n
            )
            progress(
                f"  alert {n}{' (warm-up)' if n == 0 else ''}: commit {r['commit_ms']:.0f} ms, "
                f"every push {r['every_push_ms']}, lag {r['federation_lag_ms']}, "
                f"acks on A {r['acks_on_dashboard_ms']}"
            )
            if n:
                runs.append(r)
        return {"runs": runs, "median": medians(runs)}
    finally:
        await asyncio.gather(
            *(b.close() for b in [admin, *(x for bs in ackers.values() for x in bs)])
        )


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def figure(values: list[float]) -> dict[str, float]:
        return {
            "median": round(statistics.median(values), 1),
            "min": min(values),
            "max": max(values),
        }

    out: dict[str, Any] = {"commit_ms": figure([r["commit_ms"] for r in runs])}
    for key in ("every_push_ms", "first_push_ms", "federation_lag_ms", "acks_on_dashboard_ms"):
        out[key] = {k: figure([r[key][k] for r in runs]) for k in runs[0][key]}
    out["acks_sent_ms"] = figure([r["acks_sent_ms"] for r in runs])
    out["alert_to_all_acks_on_dashboard_ms"] = figure(
        [r["alert_to_all_acks_on_dashboard_ms"] for r in runs]
    )
    return out


def run(opts: Options) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        root = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="carnet-bench-alert-across-"))
        )
        services = {}
        for n in NAMES:
            services[n] = push_bench.PushService().start()
            stack.callback(services[n].stop)
            services[n].set_delay(0)
        nodes, more = seeded(
            root, opts.families, opts.seed_cache, {n: s.url for n, s in services.items()}
        )
        for node in nodes.values():
            stack.callback(halt, node)
        if opts.logs is not None:
            stack.callback(keep_logs, nodes, opts.logs)
        serve_all(nodes)
        progress(
            "  serving: "
            + ", ".join(
                f"{n} {node.url} (pid {node.server.pid if node.server else '?'})"
                for n, node in nodes.items()
            )
        )
        try:
            results = asyncio.run(measure(nodes, services, more, opts))
        except Exception:
            for node in nodes.values():
                progress(f"{node.name}'s log ends:\n{node.log_tail()}")
            raise
    seeded_facts = {
        "families": sum(more["sizes"].values()),
        "per_node": more["sizes"],
        "group_members": more["group"]["members"],
        "seed_seconds": more["seed_seconds"],
        # once A's admin had added everyone: until B and C held the log and their keys
        "group_applied_on_b_c_seconds": more["group"].get("applied_seconds"),
        "ackers_per_node": {
            n: len(more["families"][n]) if opts.ackers <= 0 else min(opts.ackers, more["sizes"][n])
            for n in NAMES
        },
    }
    return {"seeded": seeded_facts, **results}


def report(results: dict[str, Any], opts: Options, load: dict[str, Any]) -> str:
    s, m = results["seeded"], results["median"]

    def f(x: dict[str, Any]) -> str:
        return f"{x['median']:.0f} ms ({x['min']:.0f}–{x['max']:.0f})"

    lines = [
        f"Carnet alert across three nodes — {os.cpu_count()} cores, {feed.cpu_name()}, SQLite, "
        f"code {feed.code_version()}",
        f"Load average (1 min) before {load['before'][0]:.2f}, after {load['after'][0]:.2f}",
        f"{s['families']} guardians of school A: {s['per_node']['a']} on A, {s['per_node']['b']} on B, "
        f"{s['per_node']['c']} on C ({s['group_members']} members in A's alert group); "
        f"{opts.runs} drill alerts after one warm-up, each closed by an all clear; push services "
        f"answer at once; acknowledgements from {s['ackers_per_node']} guardians per node; "
        "medians (min–max)",
        "",
        f"commit on A (POST /api/v1/alerts): {f(m['commit_ms'])}",
        "",
        "| node | first push accepted | every push accepted | alert shows there (federation lag) "
        "| its acks on A's dashboard (from the first ack) |",
        "|---|---:|---:|---:|---:|",
    ]
    for h in NAMES:
        lag = f(m["federation_lag_ms"][h]) if h in m["federation_lag_ms"] else "–"
        lines.append(
            f"| {h.upper()} | {f(m['first_push_ms'][h])} | {f(m['every_push_ms'][h])} | {lag} "
            f"| {f(m['acks_on_dashboard_ms'][h])} |"
        )
    lines += [
        f"| all | | {f(m['every_push_ms']['all'])} | | {f(m['acks_on_dashboard_ms']['all'])} |",
        "",
        f"acks sent (all POST /ack answered): {f(m['acks_sent_ms'])}; "
        f"from the alert to every ack on A's dashboard: {f(m['alert_to_all_acks_on_dashboard_ms'])}",
        "acks answered with an error and sent again, per run: "
        + ", ".join(str(r["ack_errors"]) for r in results["runs"]),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=2000, help="guardians of school A (2000)")
    parser.add_argument("--runs", type=int, default=3, help="alerts timed after a warm-up (3)")
    parser.add_argument(
        "--ackers", type=int, default=100, help="guardians acknowledging per node (100; 0: all)"
    )
    parser.add_argument("--seed-cache", type=Path, help="keep and reuse the seeded data folders")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--logs", type=Path, help="copy the nodes' logs into this folder")
    args = parser.parse_args()
    if args.families < 4 or args.runs < 1:
        parser.error("need --families ≥ 4 and --runs ≥ 1")
    opts = Options(args.families, args.runs, args.ackers, args.seed_cache, args.logs)

    def describe(results: dict[str, Any], load: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return report(results, opts, load), {}

    return common.run_and_report("alert_across", opts, args.json, lambda: run(opts), describe)


if __name__ == "__main__":
    sys.exit(main())
