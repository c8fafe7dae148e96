"""A guardian's erasure, told to the schools whose classes they were in (NP/1 §6.7).

Home side: ``guardian_erased`` (published by ``node.services.erasure`` in the
erasing transaction) becomes one signed ``Delete`` on our stream for that
peer, whose object is a Tombstone of the person (``formerType: Person``,
``id``: their actor id here), addressed to the classes there they were in.

Class side: a ``Delete`` of a Person, on the sender's peer stream and of an
actor of the sender, erases that guardian's shadow account here and what
they wrote (``erasure.erase_remote``).  Every other ``Delete`` goes on to the
handler that was wired before (messages of a class stream).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federation.activity import Activity
from federation.encoding import format_timestamp
from federation.errors import ActivityError
from federation.runtime import outbox
from federation.runtime.inbox import Handler
from federation.runtime.outbox import peer_stream
from federation.runtime.peers import unix
from node.services import erasure
from node.services.context import ServiceContext
from node.storage import peers as peer_store


def _guardian_erased(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    peer = peer_store.select_peer(payload["peer_id"])
    if peer is None:
        return  # the peer was removed since: nobody to tell
    actor = payload["actor"]
    tombstone = {
        "id": actor, "type": "Tombstone", "formerType": "Person", "version": 1,
        "deleted": format_timestamp(unix(ctx.now())),
    }  # fmt: skip
    outbox.publish(
        ctx, stream=peer_stream(ctx, peer.origin), kind="peer", type="Delete", actor=actor,
        audience=actor, object=tombstone,
        recipients={peer.origin: payload["classes"] or [f"{peer.origin}/classes"]},
    )  # fmt: skip


TRANSLATORS = {"guardian_erased": _guardian_erased}


def _is_person(activity: Activity) -> bool:
    obj = activity.object
    return isinstance(obj, Mapping) and obj.get("formerType") == "Person"


def handlers(current: dict[str, Handler]) -> dict[str, Handler]:
    """``Delete`` as wired so far, with Tombstones of a person handled here."""
    delete_before = current["Delete"]

    def delete(ctx: ServiceContext, peer_id: int, activity: Activity) -> None:
        if not _is_person(activity):
            delete_before(ctx, peer_id, activity)
            return
        assert isinstance(activity.object, Mapping)
        person = activity.object.get("id")
        if person != activity.actor:
            raise ActivityError("a person's Tombstone is sent by that person's actor")
        erasure.erase_remote(ctx, peer_id, activity.actor)

    return {"Delete": delete}
