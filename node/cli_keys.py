"""``carnet keys``: change this node's signing key and tell the peer schools (NP/1 §2.5, §2.6).

    carnet keys --data DIR status            the keys, and which peer has which statement
    carnet keys --data DIR next              create and announce the next key
    carnet keys --data DIR rotate            switch to it (24 h or more later), tell the peers
    carnet keys --data DIR revoke --yes      the key leaked: switch to a fresh key now

The command writes the data folder and the database; it may run while the
server runs.  The server's node document follows at once; the server signs
its own requests with the new key after a restart (until then it uses the
retired key, which peers still accept; after ``revoke``, restart at once).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys

import nacl.signing

from federation.keys import decode_public_key, fingerprint, key_id
from federation.keystatements import build_revocation, build_rotation
from federation.nodedoc import NodeKey
from federation.runtime import keyrotation
from federation.runtime.client import FederationClient
from federation.runtime.identity import key_name
from federation.runtime.keyrotation import KeyChangeError, Outcome
from federation.runtime.peers import unix
from node.datafolder import (
    NEXT_SIGNING_KEY_FILE,
    DataFolderError,
    install_signing_key,
    read_signing_key,
    retired_key_file,
    write_signing_key,
)
from node.services.context import ServiceContext
from node.storage import peers as key_store
from node.storage.db import Storage

RESTART = "Restart Carnet now (for example `systemctl restart carnet` or `docker compose restart`)"
_REPLACEMENT_FILE = "node-signing.new.key"


def _fp(key: nacl.signing.VerifyKey) -> str:
    return fingerprint(key)


def _now(ctx: ServiceContext) -> dt.datetime:
    return ctx.now().replace(microsecond=0)


def _loaded(ctx: ServiceContext) -> nacl.signing.SigningKey:
    if ctx.signing_key is None:
        raise KeyChangeError("the node's signing key is not loaded")
    return ctx.signing_key


def _report(outcomes: list[Outcome]) -> int:
    accepted = 0
    for outcome in sorted(outcomes, key=lambda o: o.origin):
        if outcome.accepted:
            accepted += 1
            print(f"  {outcome.origin}: accepted")
        else:
            print(f"  {outcome.origin}: failed — {outcome.reason}")
    return accepted


def keys_status(ctx: ServiceContext, storage: Storage) -> int:
    rows = storage.call(key_store.select_node_keys)
    for row in rows:
        when = {
            "current": f"since {row.valid_from:%Y-%m-%d %H:%M} UTC",
            "next": f"announced {row.valid_from:%Y-%m-%d %H:%M} UTC",
            "old": f"valid until {row.expired_at:%Y-%m-%d %H:%M} UTC" if row.expired_at else "",
            "revoked": f"revoked {row.revoked_at:%Y-%m-%d %H:%M} UTC" if row.revoked_at else "",
        }.get(row.state, "")
        print(f"{row.state:<8} {row.name}  {_fp(decode_public_key(row.public_key))}  {when}")
    for view in storage.call(keyrotation.statement_views, ctx):
        line = f"{view.kind} under {view.key_name} to {view.origin}: {view.state}"
        if view.state == "waiting":
            line += f" ({view.attempts} tries; {view.last_error or 'not tried yet'})"
        print(line)
    return 0


def keys_next(ctx: ServiceContext, storage: Storage) -> int:
    """Create ``node-signing.next.key`` and announce it in the node document."""
    folder = ctx.config.data_dir
    path = folder / NEXT_SIGNING_KEY_FILE
    announced = storage.call(keyrotation.announced_next, ctx)
    if path.exists():
        key = read_signing_key(path)
        if announced is not None and announced.name == key_name(key.verify_key):
            print(f"The next key {announced.name} is already announced: {_fp(key.verify_key)}")
            print("Switch to it with `carnet keys rotate` (24 hours or more after announcing it).")
            return 0
    elif announced is not None:
        raise KeyChangeError(
            f"the announced next key {announced.name} has no {NEXT_SIGNING_KEY_FILE} "
            "in the data folder; restore it from the backup"
        )
    else:
        key = nacl.signing.SigningKey.generate()
        write_signing_key(path, key)
    name = storage.call(keyrotation.announce_next, ctx, key.verify_key)
    print(f"Created {path} (next key {name})")
    print(f"Fingerprint of the next key: {_fp(key.verify_key)}")
    print(
        "The node document announces it from now on (no restart needed).\n"
        "In 24 hours or more, switch to it with `carnet keys rotate`."
    )
    return 0


def _finish_interrupted(ctx: ServiceContext, storage: Storage) -> bool:
    """A rotation recorded in the database whose key file was not swapped yet: swap it."""
    folder = ctx.config.data_dir
    path = folder / NEXT_SIGNING_KEY_FILE
    if not path.exists():
        return False
    key = read_signing_key(path)
    rows = storage.call(key_store.select_node_keys)
    if any(r.state == "current" and r.name == key_name(key.verify_key) for r in rows):
        install_signing_key(folder, path)
        print(f"Finished an interrupted rotation: {key_name(key.verify_key)} is the node's key.")
        return True
    return False


def keys_rotate(ctx: ServiceContext, storage: Storage, *, skip_notice: bool = False) -> int:
    """Switch to the announced next key and send ``RotateKey`` to every active peer."""
    folder = ctx.config.data_dir
    if _finish_interrupted(ctx, storage):
        print("The node sends the rotation statement to the peers by itself. " + RESTART + ".")
        return 0
    path = folder / NEXT_SIGNING_KEY_FILE
    try:
        new = read_signing_key(path)
    except DataFolderError:
        raise KeyChangeError(
            "no next key: run `carnet keys next` first, then rotate 24 hours later"
        ) from None
    announced = storage.call(keyrotation.announced_next, ctx)
    if announced is None or announced.name != key_name(new.verify_key):
        raise KeyChangeError(f"{path} is not the announced next key; run `carnet keys next`")
    now = _now(ctx)
    if now - announced.valid_from < keyrotation.NOTICE and not skip_notice:
        raise KeyChangeError(
            "the next key was announced less than 24 hours ago: peers may not have seen it "
            "yet. Wait, or add --skip-notice"
        )
    old = _loaded(ctx)
    old_name, new_name = key_name(old.verify_key), key_name(new.verify_key)
    retired = folder / retired_key_file(old_name)
    if not retired.exists():  # the retiring key signs the statement until it expires
        write_signing_key(retired, old)
    expired_at = now + keyrotation.ROTATION_GRACE
    statement = build_rotation(
        origin=ctx.config.origin, old_name=old_name, old_key=old, new_name=new_name,
        new_key=new, expired_at=unix(expired_at), published=unix(now),
    )  # fmt: skip
    ids = storage.call(
        keyrotation.record_rotation, ctx, old=old.verify_key, new=new.verify_key,
        statement=statement, published=now, expired_at=expired_at,
    )  # fmt: skip
    install_signing_key(folder, path)
    print(f"This node's key is now {new_name}: {_fp(new.verify_key)}")
    print(f"The old key {old_name} stays valid until {expired_at:%Y-%m-%d %H:%M} UTC.")
    outcomes = _send(ctx, storage, new, ids)
    accepted = _report_rotation(outcomes, len(ids))
    print(RESTART + " so that it signs with the new key.")
    return 0 if accepted == len(ids) else 1


def _send(
    ctx: ServiceContext, storage: Storage, current: nacl.signing.SigningKey, ids: list[int] | None
) -> list[Outcome]:
    async def run() -> list[Outcome]:
        client = FederationClient(
            ctx.config, current, key_id(ctx.config.origin, key_name(current.verify_key))
        )
        try:
            return await keyrotation.send_statements(
                storage, ctx, client,
                keyrotation.data_folder_keys(ctx.config.data_dir, ctx.signing_key), ids,
            )  # fmt: skip
        finally:
            await client.aclose()

    return asyncio.run(run())


def _report_rotation(outcomes: list[Outcome], total: int) -> int:
    if not total:
        print("No active peer school to tell.")
        return 0
    print(f"Told the {total} peer school(s):")
    accepted = _report(outcomes)
    if accepted < total:
        print(
            "The node retries the others by itself (at once when they contact it), until the "
            "old key expires. `carnet keys status` shows where it stands."
        )
    return accepted


def keys_revoke(ctx: ServiceContext, storage: Storage) -> int:
    """The current key leaked: revoke it, switch to a fresh key, send ``RevokeKey``."""
    folder = ctx.config.data_dir
    leaked = _loaded(ctx)
    leaked_name = key_name(leaked.verify_key)
    new = nacl.signing.SigningKey.generate()
    new_name = key_name(new.verify_key)
    staged = folder / _REPLACEMENT_FILE
    staged.unlink(missing_ok=True)
    write_signing_key(staged, new)
    now = _now(ctx)
    statement = build_revocation(
        origin=ctx.config.origin, revoked_name=leaked_name, revoked_key=leaked,
        revoked_at=unix(now), published=unix(now),
        replacement=NodeKey(key_id(ctx.config.origin, new_name), new.verify_key),
    )  # fmt: skip
    peers = storage.call(
        keyrotation.record_revocation, ctx, revoked=leaked.verify_key,
        replacement=new.verify_key, revoked_at=now,
    )  # fmt: skip
    install_signing_key(folder, staged)
    (folder / NEXT_SIGNING_KEY_FILE).unlink(missing_ok=True)
    body = json.dumps(statement, ensure_ascii=False, separators=(",", ":")).encode()

    async def run() -> list[Outcome]:
        client = FederationClient(ctx.config, new, key_id(ctx.config.origin, new_name))
        leaked_id = key_id(ctx.config.origin, leaked_name)
        try:

            async def one(peer_id: int, origin: str) -> Outcome:
                ok, reason = await keyrotation.post_statement(
                    client, origin, body, leaked, leaked_id
                )
                return Outcome(peer_id, origin, "RevokeKey", ok, reason)

            return list(await asyncio.gather(*(one(p, o) for p, o in peers)))
        finally:
            await client.aclose()

    outcomes = asyncio.run(run())
    print(f"Revoked the key {leaked_name}: {_fp(leaked.verify_key)}")
    print(f"This node's new key is {new_name}.\n\n  New fingerprint: {_fp(new.verify_key)}\n")
    if peers:
        print(f"Told the {len(peers)} peer school(s):")
        _report(outcomes)
        print(
            "A peer that was not told learns it from this node's document the next time this "
            "node contacts it."
        )
    print(
        f"{RESTART}: until then it still signs with the revoked key, which peers refuse.\n"
        "Then call the admin of each peer school: their Carnet paused yours. Read them the "
        "new fingerprint above; once they have compared it, they add your school again "
        "(Admin → Peer schools) and confirm it."
    )
    return 0


def confirm_revocation(assume_yes: bool) -> None:
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise KeyChangeError("revoking is final: add --yes to confirm")
    answer = input("Revoke this node's key? Every peer school pauses until re-confirmed [y/N] ")
    if answer.strip().lower() not in ("y", "yes", "o", "oui"):
        raise KeyChangeError("nothing changed")
