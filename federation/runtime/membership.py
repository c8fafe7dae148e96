"""Membership digests (NP/1 §9.4): the class's node says who of a peer's users are members;
the peer repairs its cache when it disagrees (a lost Accept, a missed Remove).

Class side: every transaction to a peer carries, for each class where that
peer's users asked to join, the digest of its current members there (their
actor ids), and ``GET /np/streams/classes/{id}/members`` lists them with
their request ids.  Home side: a digest that differs from the one of its
accepted requests makes it fetch that list and settle its requests.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from federation.errors import FederationError, NotAMember
from federation.runtime.class_stream import child_url, class_info
from federation.runtime.client import FetchError
from federation.transaction import MembershipDigest, membership_digest
from node.services import joins
from node.services.context import ServiceContext
from node.storage import peers as peer_store
from node.storage import remote_join as store

log = logging.getLogger("carnet.federation")


def digests_for(ctx: ServiceContext, peer_id: int) -> list[MembershipDigest]:
    """What a transaction to this peer carries: one digest per class it has users in."""
    by_class: dict[int, list[str]] = {}
    for follow in store.follows_of_peer(peer_id):
        members = by_class.setdefault(follow.class_id, [])
        if follow.state == "accepted":
            members.append(follow.actor)
    origin = ctx.config.origin
    return [
        MembershipDigest(
            f"{origin}/classes/{class_id}",
            membership_digest(members),
            f"{origin}/np/streams/classes/{class_id}/members",
        )
        for class_id, members in sorted(by_class.items())
    ]


def members_page(ctx: ServiceContext, peer_id: int, class_id: int) -> dict[str, Any]:
    """The peer's members of a class here, and its requests waiting for the teacher."""
    follows = store.follows_of_peer(peer_id, class_id)
    if not follows:
        raise NotAMember("none of your users asked to join this class")

    def member(f: Any) -> dict[str, Any]:
        child = f.invitation.child if f.invitation_id else None
        found = {"actor": f.actor, "follow": f.follow_id}
        if child is not None:  # as the Accept says it, for a node that lost it
            found["child"] = {"id": child_url(ctx, class_id, child.id), "name": child.first_name}
        return found

    return {
        "class": class_info(ctx, class_id, None),
        "members": [member(f) for f in follows if f.state == "accepted"],
        "pending": [
            {"actor": f.actor, "follow": f.follow_id} for f in follows if f.state == "linked"
        ],
    }


def drifted(ctx: ServiceContext, peer_id: int, entries: tuple[MembershipDigest, ...]) -> list[str]:
    """URLs of the member lists to fetch: our accepted requests disagree with the digest."""
    mine = joins.accepted_members(ctx, peer_id)
    return [e.url for e in entries if membership_digest(mine.get(e.stream, [])) != e.digest]


async def reconcile(fed: Any, peer_id: int, origin: str, url: str) -> None:
    """Fetch a class's member list from its node and settle our requests by it."""
    path = url[len(origin) :]
    try:
        answer = await fed.client.signed("GET", origin, path, None, created=int(time.time()))
        if answer.status != 200:
            raise FederationError(f"HTTP {answer.status}")
        page = json.loads(answer.body)
        members = [m["follow"] for m in page["members"]]
        pending = [m["follow"] for m in page["pending"]]
        info = page.get("class") if isinstance(page.get("class"), dict) else {}
        infos = {m["follow"]: {**info, "child": m.get("child")} for m in page["members"]}
    except (FetchError, FederationError, ValueError, KeyError, TypeError) as error:
        log.warning("np: fetching %s failed: %s", url, error)
        return
    stream = url.removesuffix("/members").replace("/np/streams/", "/", 1)
    peer = await fed.storage.run(peer_store.select_peer, peer_id)
    if peer is None or not url.startswith(peer.origin + "/"):
        return
    await fed.storage.run(joins.reconcile, fed.ctx, peer_id, stream, members, pending, infos)
