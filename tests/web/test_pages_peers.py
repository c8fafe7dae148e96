"""The admin's peer schools pages: add a school, compare its fingerprints, confirm, stop.

The other school is a document signed with keys made here and served by
pytest-httpx, so every outbound fetch is visible (and none happens for a
refused request).
"""

from __future__ import annotations

import html
import json
import re
import time

import httpx
import nacl.signing
import pytest
from pytest_httpx import HTTPXMock
from quart.typing import TestClientProtocol as Client

from federation.keys import fingerprint, key_id
from federation.nodedoc import NodeKey, build_node_document
from federation.runtime import peers
from node.services import accounts
from node.services.context import Actor, ServiceContext
from node.storage import activities as activity_store
from node.storage.db import Storage
from tests.conftest import PUBLIC_URL
from tests.factories import api_login as login
from tests.factories import csrf, make_school

B = "https://ecole-b.example"
DOC = B + "/.well-known/carnet-node"


def document(
    keys: dict[str, nacl.signing.SigningKey], revoked: list[NodeKey] | None = None
) -> bytes:
    """École B's node document, signed by ``keys``."""
    now = int(time.time())
    doc = build_node_document(
        origin=B,
        name="École B",
        signing_keys=keys,
        valid_from={name: now - 60 for name in keys},
        issued_at=now,
        valid_until=now + 86400,
        revoked=revoked or [],
    )
    return json.dumps(doc).encode()


def text_of(page: str) -> str:
    """The page's text, tags removed and spaces collapsed, as a reader sees it."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def shown_fingerprints(page: str) -> list[str]:
    """The fingerprints the page shows in large groups, group by group."""
    blocks = re.findall(r'<p class="fingerprint-groups large"[^>]*>(.*?)</p>', page, re.S)
    return [" ".join(re.findall(r"<span>([0-9A-F]{4})</span>", block)) for block in blocks]


def peer_row(page: str) -> dict[str, str]:
    """The first school of the list, column header → cell text."""
    headers = [text_of(h) for h in re.findall(r'<th scope="col">(.*?)</th>', page, re.S)]
    row = re.search(r'<tr data-peer="\d+">(.*?)</tr>', page, re.S)
    assert row is not None
    cells = [text_of(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row[1], re.S)]
    return dict(zip(headers, cells, strict=True))


def hidden_fingerprints(page: str) -> list[str]:
    return re.findall(r'<input type="hidden" name="fingerprint" value="([^"]+)">', page)


async def get_page(client: Client, path: str, status: int = 200) -> str:
    response = await client.get(path)
    assert response.status_code == status, path
    return await response.get_data(as_text=True)


async def as_admin(client: Client, storage: Storage, ctx: ServiceContext) -> str:
    make_school(storage, ctx)
    await login(client, "admin@school.test")
    return await csrf(client)


def peer_view(storage: Storage, ctx: ServiceContext, peer_id: int) -> peers.PeerView:
    """The peer as the service sees it (through the school's admin)."""
    admin = next(s for s in storage.call(accounts.list_staff, ctx, None) if s.role == "admin")
    actor = Actor(admin.id, "admin", admin.display_name)
    view: peers.PeerView = storage.call(peers.get_peer, ctx, actor, peer_id)
    return view


async def add_school(client: Client, token: str, typed: str = B) -> int:
    response = await client.post("/admin/peers", form={"csrf_token": token, "origin": typed})
    assert response.status_code == 302, await response.get_data(as_text=True)
    match = re.fullmatch(r"/admin/peers/(\d+)", response.headers["Location"])
    assert match is not None, response.headers["Location"]
    return int(match[1])


async def confirm_shown(client: Client, token: str, peer_id: int) -> None:
    """Press "They match: confirm" with exactly the hidden fields the page holds."""
    page = await get_page(client, f"/admin/peers/{peer_id}")
    form = [("csrf_token", token)] + [("fingerprint", f) for f in hidden_fingerprints(page)]
    response = await client.post(
        f"/admin/peers/{peer_id}/confirm",
        data="&".join(f"{k}={v}" for k, v in form).replace(" ", "+"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 302, await response.get_data(as_text=True)
    assert response.headers["Location"] == f"/admin/peers/{peer_id}"


def state_of(storage: Storage, ctx: ServiceContext, peer_id: int) -> str:
    return peer_view(storage, ctx, peer_id).state


async def test_adding_a_school_shows_its_fingerprints_and_confirming_makes_it_active(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    keys = {"k1": nacl.signing.SigningKey.generate()}
    expected = fingerprint(keys["k1"].verify_key)
    token = await as_admin(client, storage, ctx)
    school_page = await get_page(client, "/admin")
    assert '<a href="/admin/peers">Peer schools</a>' in school_page  # the admin area's navigation
    empty = await get_page(client, "/admin/peers")
    assert "No peer school yet." in empty
    assert 'action="/admin/peers"' in empty and 'id="origin"' in empty
    own = fingerprint(ctx.signing_key.verify_key)  # type: ignore[union-attr]
    assert shown_fingerprints(empty) == [own]  # this school's, for the other admin to compare

    httpx_mock.add_response(url=DOC, content=document(keys))
    peer_id = await add_school(client, token, "ecole-b.example/")
    page = await get_page(client, f"/admin/peers/{peer_id}")
    text = text_of(page)
    assert "École B" in text and B in text and "Pending" in text
    assert "compare these fingerprints, character by character; confirm only if they match" in text
    assert shown_fingerprints(page) == [expected]
    assert hidden_fingerprints(page) == [expected]
    assert "They match: confirm" in text and f'action="/admin/peers/{peer_id}/cancel"' in page
    assert state_of(storage, ctx, peer_id) == "pending"

    await confirm_shown(client, token, peer_id)
    assert state_of(storage, ctx, peer_id) == "active"
    page = await get_page(client, f"/admin/peers/{peer_id}")
    assert 'data-state="active"' in page and 'data-key-state="pinned"' in page
    assert expected in page and 'id="confirm-peer"' not in page
    assert f'href="/admin/peers/{peer_id}/stop"' in page
    row = peer_row(await get_page(client, "/admin/peers"))
    assert row["School"] == "École B " + B
    assert row["State"] == "Active Trusted: its signed requests are accepted."
    assert row["Last contact"] == "Never"
    assert len(httpx_mock.get_requests()) == 1


async def test_the_list_shows_contact_clock_backlog_errors_and_refused_activities(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    keys = {"k1": nacl.signing.SigningKey.generate()}
    token = await as_admin(client, storage, ctx)
    httpx_mock.add_response(url=DOC, content=document(keys))
    peer_id = await add_school(client, token)
    await confirm_shown(client, token, peer_id)
    # A signed request four minutes ago from a clock 45 s ahead, and one refused activity.
    now = ctx.now()
    storage.call(peers.record_contact, ctx, peer_id, peers.unix(now) + 45)

    def refuse_one() -> None:
        activity_store.FedDeadLetter.create(
            peer=peer_id, direction="in", activity_id=B + "/np/act/cm2-7",
            reason="bad_activity", message="proof does not verify", created_at=now,
        )  # fmt: skip

    storage.call(refuse_one)
    row = peer_row(await get_page(client, "/admin/peers"))
    assert re.match(r"\d+ \w+ ago ", row["Last contact"])
    assert "Its clock is 45 seconds ahead of this server's." in row["Last contact"]
    assert "NTP" in row["Last contact"]
    assert (row["Activities waiting"], row["Refused activities"], row["Last error"]) == (
        "0",
        "1",
        "None",
    )
    detail = await get_page(client, f"/admin/peers/{peer_id}")
    letters = text_of(re.search(r'<table class="list letters".*?</table>', detail, re.S)[0])  # type: ignore[index]
    assert "Sent by them, refused by this school" in letters
    assert B + "/np/act/cm2-7" in letters and "bad_activity" in letters
    assert "proof does not verify" in letters
    # In French, with the same facts.
    french = text_of(
        await (await client.get("/admin/peers", headers={"Cookie": "carnet_lang=fr"})).get_data(
            as_text=True
        )
    )
    assert "Écoles partenaires" in french and "Ajouter une école" in french
    assert "Son horloge a 45 secondes d’avance sur celle de ce serveur." in french


async def test_a_quiet_clock_difference_is_not_shown(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    token = await as_admin(client, storage, ctx)
    httpx_mock.add_response(url=DOC, content=document({"k1": nacl.signing.SigningKey.generate()}))
    peer_id = await add_school(client, token)
    await confirm_shown(client, token, peer_id)
    storage.call(peers.record_contact, ctx, peer_id, peers.unix(ctx.now()) - 12)
    row = peer_row(await get_page(client, "/admin/peers"))
    assert " ago " in row["Last contact"] and "clock" not in row["Last contact"]


async def test_a_wrong_or_changed_fingerprint_pins_nothing_and_says_why(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    first = {"k1": nacl.signing.SigningKey.generate()}
    token = await as_admin(client, storage, ctx)
    httpx_mock.add_response(url=DOC, content=document(first))
    peer_id = await add_school(client, token)
    shown = await get_page(client, f"/admin/peers/{peer_id}")
    # Meanwhile the school is added again and now shows another key.
    second = {"k2": nacl.signing.SigningKey.generate()}
    httpx_mock.add_response(url=DOC, content=document(second))
    assert await add_school(client, token) == peer_id
    stale = hidden_fingerprints(shown)
    response = await client.post(
        f"/admin/peers/{peer_id}/confirm",
        data=f"csrf_token={token}&fingerprint={stale[0].replace(' ', '+')}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 409
    page = await response.get_data(as_text=True)
    assert "The school&#39;s keys changed since they were shown. Add the school again." in page
    assert 'id="form-error"' in page
    assert shown_fingerprints(page) == [fingerprint(second["k2"].verify_key)]
    assert state_of(storage, ctx, peer_id) == "pending"
    nothing = await client.post(f"/admin/peers/{peer_id}/confirm", form={"csrf_token": token})
    assert nothing.status_code == 409  # no fingerprint at all: nothing matches either
    assert state_of(storage, ctx, peer_id) == "pending"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter the address of the other school's Carnet."),
        ("ftp://ecole-b.example", "Enter the school's address alone"),
        ("https://ecole-b.example/inbox", "Enter the school's address alone"),
        ("http://ecole-b.example", "must start with https://"),
        (PUBLIC_URL, "That is this school's own address."),
    ],
)
async def test_a_bad_address_keeps_the_typed_value_and_fetches_nothing(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock,
    typed: str, message: str,
) -> None:  # fmt: skip
    token = await as_admin(client, storage, ctx)
    response = await client.post("/admin/peers", form={"csrf_token": token, "origin": typed})
    assert response.status_code == 400
    page = html.unescape(await response.get_data(as_text=True))
    assert message in page and 'id="form-error"' in page
    assert f'value="{typed}"' in page
    assert httpx_mock.get_requests() == []


async def test_an_unreachable_lying_or_known_school_is_explained_on_the_form(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    token = await as_admin(client, storage, ctx)

    async def add(typed: str, status: int, message: str) -> None:
        response = await client.post("/admin/peers", form={"csrf_token": token, "origin": typed})
        assert response.status_code == status
        page = html.unescape(await response.get_data(as_text=True))
        assert message in page and 'id="form-error"' in page
        assert f'value="{typed}"' in page

    httpx_mock.add_exception(httpx.ConnectError("refused"), url=DOC)
    await add("ecole-b.example", 502, "The other school's Carnet could not be reached:")
    httpx_mock.add_response(url=DOC, status_code=404)
    await add("ecole-b.example", 502, "answered HTTP 404")
    keys = {"k1": nacl.signing.SigningKey.generate()}
    other = json.loads(document(keys))
    other["name"] = "Someone else"  # the signature no longer covers it
    httpx_mock.add_response(url=DOC, content=json.dumps(other).encode())
    await add(B, 400, "The other school's node answered with an invalid node document")
    assert "No peer school yet." in await get_page(client, "/admin/peers")
    httpx_mock.add_response(url=DOC, content=document(keys))
    peer_id = await add_school(client, token)
    await confirm_shown(client, token, peer_id)
    httpx_mock.add_response(url=DOC, content=document(keys))
    await add(B, 409, "This school is already a peer.")
    assert state_of(storage, ctx, peer_id) == "active"


async def test_non_admins_are_refused_and_nothing_is_fetched_for_them(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    token = await as_admin(client, storage, ctx)
    httpx_mock.add_response(url=DOC, content=document({"k1": nacl.signing.SigningKey.generate()}))
    peer_id = await add_school(client, token)
    await confirm_shown(client, token, peer_id)
    teacher = client.app.test_client()
    await login(teacher, "dubois@school.test")
    teacher_token = await csrf(teacher)
    assert '<a href="/admin/peers">' not in await get_page(teacher, "/classes")
    for path in ("/admin/peers", f"/admin/peers/{peer_id}", f"/admin/peers/{peer_id}/stop"):
        page = await get_page(teacher, path, 403)
        assert "Only a school admin can do this." in page and "École B" not in page
    added = await teacher.post(
        "/admin/peers", form={"csrf_token": teacher_token, "origin": "ecole-c.example"}
    )
    assert added.status_code == 403
    for action in ("confirm", "cancel", "stop"):
        response = await teacher.post(
            f"/admin/peers/{peer_id}/{action}", form={"csrf_token": teacher_token}
        )
        assert response.status_code == 403, action
    assert len(httpx_mock.get_requests()) == 1  # the admin's fetch only
    assert state_of(storage, ctx, peer_id) == "active"
    visitor = client.app.test_client()
    anonymous = await visitor.get("/admin/peers")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].endswith("/login")


async def test_stopping_asks_first_then_the_school_is_stopped_and_can_be_added_again(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    token = await as_admin(client, storage, ctx)
    keys = {"k1": nacl.signing.SigningKey.generate()}
    httpx_mock.add_response(url=DOC, content=document(keys))
    peer_id = await add_school(client, token)
    await confirm_shown(client, token, peer_id)
    ask = text_of(await get_page(client, f"/admin/peers/{peer_id}/stop"))
    assert "Stop federating with École B?" in ask and "Keep federating" in ask
    assert state_of(storage, ctx, peer_id) == "active"  # asking changes nothing
    response = await client.post(f"/admin/peers/{peer_id}/stop", form={"csrf_token": token})
    assert (response.status_code, response.headers["Location"]) == (302, f"/admin/peers/{peer_id}")
    assert state_of(storage, ctx, peer_id) == "retired"
    page = await get_page(client, f"/admin/peers/{peer_id}")
    assert 'data-state="retired"' in page and "You stopped federating with this school" in page
    assert 'id="add-again"' in page and f'href="/admin/peers/{peer_id}/stop"' not in page
    assert "No peer school yet." in await get_page(client, "/admin/peers")
    again = await client.get(f"/admin/peers/{peer_id}/stop")
    assert again.status_code == 302  # nothing left to stop
    httpx_mock.add_response(url=DOC, content=document(keys))
    assert await add_school(client, token) == peer_id
    assert state_of(storage, ctx, peer_id) == "pending"


async def test_cancel_leaves_nothing_trusted(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    token = await as_admin(client, storage, ctx)
    httpx_mock.add_response(url=DOC, content=document({"k1": nacl.signing.SigningKey.generate()}))
    peer_id = await add_school(client, token)
    response = await client.post(f"/admin/peers/{peer_id}/cancel", form={"csrf_token": token})
    assert (response.status_code, response.headers["Location"]) == (302, "/admin/peers")
    assert state_of(storage, ctx, peer_id) == "retired"
    view = peer_view(storage, ctx, peer_id)
    assert [k.state for k in view.keys] == ["new"]  # never pinned
    assert "No peer school yet." in await get_page(client, "/admin/peers")


async def test_a_paused_school_explains_itself_and_its_new_key_is_compared_again(
    client: Client, storage: Storage, ctx: ServiceContext, httpx_mock: HTTPXMock
) -> None:
    old = nacl.signing.SigningKey.generate()
    token = await as_admin(client, storage, ctx)
    httpx_mock.add_response(url=DOC, content=document({"k1": old}))
    peer_id = await add_school(client, token)
    await confirm_shown(client, token, peer_id)
    # The school revokes k1 and publishes k2: its next document pauses the peer.
    new = nacl.signing.SigningKey.generate()
    revoked = NodeKey(key_id(B, "k1"), old.verify_key, int(time.time()) - 30)
    after = document({"k2": new}, revoked=[revoked])
    storage.call(peers.refresh_document, ctx, B, after)
    assert state_of(storage, ctx, peer_id) == "paused"
    page = await get_page(client, f"/admin/peers/{peer_id}")
    text = text_of(page)
    assert "Federation with this school is paused" in text
    assert "a pinned key was revoked" in text  # what the node recorded
    assert 'data-key-state="revoked"' in page and 'id="add-again"' in page
    row = peer_row(await get_page(client, "/admin/peers"))
    assert row["State"] == "Paused A key was revoked: confirm the new one."
    assert "a pinned key was revoked" in row["Last error"]
    # Add the school again: the new key is shown to compare, then pinned.
    httpx_mock.add_response(url=DOC, content=after)
    response = await client.post("/admin/peers", form={"csrf_token": token, "origin": B})
    assert response.headers["Location"] == f"/admin/peers/{peer_id}"
    page = await get_page(client, f"/admin/peers/{peer_id}")
    assert shown_fingerprints(page) == [fingerprint(new.verify_key)]
    await confirm_shown(client, token, peer_id)
    view = peer_view(storage, ctx, peer_id)
    assert view.state == "active"
    assert {(k.fingerprint, k.state) for k in view.keys} == {
        (fingerprint(new.verify_key), "pinned"),
        (fingerprint(old.verify_key), "revoked"),
    }
