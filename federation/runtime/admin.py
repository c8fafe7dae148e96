"""What an admin does with peer schools, where it needs the network (adding one).

The permission check comes first: only an admin's request makes the node
fetch anything from an address someone typed.
"""

from __future__ import annotations

from federation.runtime import peers
from federation.runtime.client import FetchError
from federation.runtime.routes import Federation
from node.errors import N_, Unreachable
from node.services import policy
from node.services.context import Actor


async def add_peer(fed: Federation, actor: Actor, origin_text: object) -> peers.PeerView:
    """Fetch the school's node document and record it, pending the admin's confirmation."""
    policy.require_admin(actor)
    origin = peers.normalize_origin(fed.ctx, origin_text)
    try:
        document = await fed.client.fetch_document(origin)
    except FetchError as error:
        raise Unreachable(
            N_("The other school's Carnet could not be reached: {reason}"),
            field="origin",
            reason=str(error),
        ) from None
    view: peers.PeerView = await fed.storage.run(peers.stage_peer, fed.ctx, actor, origin, document)
    return view
