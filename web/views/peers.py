"""The admin's peer schools (federation): list, add, compare fingerprints, confirm, stop.

Every page and action goes through ``federation.runtime`` services, which
check that the actor is an admin first: nobody else sees a peer, and only an
admin's request makes the node fetch an address someone typed.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, redirect, render_template

from federation.keys import fingerprint
from federation.runtime import admin, identity, peers
from federation.runtime.routes import runtime
from node.errors import CarnetError
from web.errors import error_message
from web.views.common import call, field, form, form_list, require_actor

blueprint = Blueprint("peers", __name__)

#: A clock difference worth showing, in seconds (NP/1 refuses requests beyond 300).
NOTABLE_SKEW = 30
#: Key states of a pending peer's document that the admin confirms (``confirm_peer``
#: wants every current key of the document, pinned already or not).
CURRENT_KEY_STATES = ("new", "pinned")


def own_fingerprint() -> str:
    """This node's key fingerprint, as the other school sees it when it adds this one."""
    return fingerprint(identity.signing_key(current_app.config["CARNET_CTX"]).verify_key)


def to_confirm(view: peers.PeerView) -> list[str]:
    """The fingerprints the admin compares, then confirms (the document's current keys)."""
    return [key.fingerprint for key in view.keys if key.state in CURRENT_KEY_STATES]


def _refused(error: CarnetError) -> bool:
    """Errors that are the whole answer (not an admin, no such peer), not a form message."""
    return error.status in (401, 403, 404)


async def _list_page(
    error: str | None = None, values: dict[str, str] | None = None, status: int = 200
) -> Any:
    views = await call(peers.list_peers, require_actor())
    html = await render_template(
        "admin/peers.html",
        peers=views,
        error=error,
        values=values or {},
        own_fingerprint=own_fingerprint(),
        notable_skew=NOTABLE_SKEW,
    )
    return html, status


async def _peer_page(peer_id: int, error: str | None = None, status: int = 200) -> Any:
    view = await call(peers.get_peer, require_actor(), peer_id)
    html = await render_template(
        "admin/peer.html",
        peer=view,
        to_confirm=to_confirm(view),
        error=error,
        notable_skew=NOTABLE_SKEW,
    )
    return html, status


@blueprint.get("/admin/peers")
async def index() -> Any:
    return await _list_page()


@blueprint.post("/admin/peers")
async def add() -> Any:
    """Fetch the school's node document, then show its fingerprints to compare."""
    actor = require_actor()
    data = await form()
    try:
        view = await admin.add_peer(runtime(), actor, field(data, "origin", 255))
    except CarnetError as error:
        if _refused(error):
            raise
        return await _list_page(error_message(current_app, error), data, error.status)
    return redirect(f"/admin/peers/{view.id}")


@blueprint.get("/admin/peers/<id:peer_id>")
async def detail(peer_id: int) -> Any:
    return await _peer_page(peer_id)


@blueprint.post("/admin/peers/<id:peer_id>/confirm")
async def confirm(peer_id: int) -> Any:
    """Pin exactly the keys whose fingerprints the page showed (hidden fields)."""
    actor = require_actor()
    try:
        shown = await form_list("fingerprint", max_length=64)
        await call(peers.confirm_peer, actor, peer_id, shown)
    except CarnetError as error:
        if _refused(error):
            raise
        return await _peer_page(peer_id, error_message(current_app, error), error.status)
    return redirect(f"/admin/peers/{peer_id}")


@blueprint.post("/admin/peers/<id:peer_id>/cancel")
async def cancel(peer_id: int) -> Any:
    """The fingerprints did not match, or the admin changed their mind: nothing is pinned."""
    await call(peers.retire_peer, require_actor(), peer_id)
    return redirect("/admin/peers")


@blueprint.get("/admin/peers/<id:peer_id>/stop")
async def stop_page(peer_id: int) -> Any:
    """The confirmation step before stopping."""
    view = await call(peers.get_peer, require_actor(), peer_id)
    if view.state == "retired":
        return redirect(f"/admin/peers/{peer_id}")
    return await render_template("admin/peer_stop.html", peer=view)


@blueprint.post("/admin/peers/<id:peer_id>/stop")
async def stop(peer_id: int) -> Any:
    await call(peers.retire_peer, require_actor(), peer_id)
    return redirect(f"/admin/peers/{peer_id}")
