"""Issue 8 across real nodes: "Delete my account" at home reaches the school of the other child.

Camille's own school is A (Léa's class); Noé is in CE1 B at school B, which
she joined from A; Karim, Noé's other guardian, is a parent of B. From A she
comments on a post of CE1 B and answers Karim in Noé's family thread, which
B's teacher opened with them both; Karim comments on the same post. School
C, another peer of B, then sends B a Delete of Camille signed with C's own
key: B refuses it and keeps her.
Then Camille deletes her account on A (``POST /api/v1/me/erasure``). A
sends B one signed Delete of her person; B's answer is lost on the way
back, so A sends the same transaction again, and B applies it once. What
is checked is what B's teacher and Karim see through B's own API, and A's
disk for the file Camille had uploaded there (a guardian's files stay on
their home node: comments and chat messages carry none, so B holds none).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable

import httpx
import pytest

from federation.activity import build_activity
from federation.encoding import format_timestamp
from federation.httpsig import sign_request
from federation.keys import key_id
from federation.runtime.identity import key_name
from federation.transaction import build_transaction
from node.datafolder import load_keys
from node.e2e.encoding import b64url_encode
from node.storage.blobstore import BlobStore
from tests.multinode import classes as k
from tests.multinode.classes import DELIVERY, family_at_home, joined, set_up_schools, teacher_class
from tests.multinode.cluster import Cluster
from tests.multinode.faultproxy import FaultProxy
from tests.multinode.nodes import Node
from tests.multinode.test_chat_nodes import _seal, chat, say, texts
from tests.multinode.test_class_content_nodes import FAST_RETRIES, inbox_puts
from tests.multinode.waiting import wait_until


def comments(school_class: k.SchoolClass) -> list[str]:
    """The comments under the class's only post, as its teacher reads them on their node."""
    [post] = k.read_class(school_class)
    return sorted(post.comments)


def upload(session: k.Session, class_id: int, data: bytes) -> str:
    """An encrypted upload as the browser sends it (size, one part, SHA-256); its id."""
    blob = session.post(f"/api/v1/classes/{class_id}/blobs", {"size": len(data)})["id"]
    sent = session.http.put(
        f"/api/v1/blobs/{blob}?offset=0", content=data,
        headers={"X-CSRF-Token": session.csrf, "Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert sent.status_code == 200, sent.text
    digest = b64url_encode(hashlib.sha256(data).digest())
    session.post(f"/api/v1/blobs/{blob}/complete", {"sha256": digest}, expect=200)
    return str(blob)


def forged_delete(sender: Node, target: Node, person: str, class_url: str) -> httpx.Response:
    """A transaction from ``sender``, signed with its own key, deleting ``person`` (not its own)."""
    key = load_keys(sender.data_dir).signing_key
    keyid = key_id(sender.origin, key_name(key.verify_key))
    stream = f"{sender.origin}/np/forged"  # a stream of its own that B has not seen yet
    now = int(time.time())
    tombstone = {"id": person, "type": "Tombstone", "formerType": "Person", "version": 1,
                 "deleted": format_timestamp(now)}  # fmt: skip
    delete = build_activity(
        id=f"{sender.origin}/np/act/forged-1", type="Delete", actor=person, stream=stream,
        seq=1, published=now, audience=person, object=tombstone, signing_key=key, keyid=keyid,
        to=[class_url],
    )  # fmt: skip
    txn = "01J8Z6R4000000000000000001"  # a ULID; the first transaction of C to B
    body = build_transaction(
        txn_id=txn, origin=sender.origin, destination=target.origin, activities=[delete],
        streams={stream: (0, 1)},
    )  # fmt: skip
    path = f"/np/inbox/txn/{txn}"
    headers = sign_request(
        method="PUT", target_uri=target.url(path), body=body, signing_key=key, keyid=keyid,
        created=now,
    )  # fmt: skip
    with httpx.Client(trust_env=False, timeout=10.0) as http:
        return http.put(target.url(path), content=body, headers=headers)


@pytest.mark.transport  # a lost answer through the fault proxy; erasure on PostgreSQL: tests/federation/runtime/test_erasure.py
def test_an_erasure_at_home_erases_the_guardian_at_the_other_school_once(
    make_cluster: Callable[..., Cluster], link: Callable[..., FaultProxy]
) -> None:
    cluster = make_cluster(("a", "b", "c"), start=False, config=FAST_RETRIES)
    a, b, c = cluster
    a_to_b = link(a, b)
    cluster.start()
    admins = set_up_schools([a, b], ("a", "b"))
    k.add_peer(admins["b"], c)  # B trusts C's key (C, which never sends B anything, needs no admin)
    camille = family_at_home(admins["a"], "Camille Martin", "+33639980001", "Léa")
    ce1 = teacher_class(admins["b"], "CE1 B")
    noe = joined(camille, ce1, "Noé").child_id
    karim = k.onboard_guardian(b, k.register_guardian(ce1, noe, "Karim Bernard", "+33639980003"))
    k.approve_waiting(ce1)
    post_id = k.post(ce1, "Sortie au musée jeudi")
    wait_until(
        lambda: any(i["class_name"] == "CE1 B" for i in k.feed_items(camille.home)),
        timeout=DELIVERY, what="CE1 B's post on A", logs=[b, a],
    )  # fmt: skip
    on_a = next(i["class_id"] for i in k.feed_items(camille.home) if i["class_name"] == "CE1 B")

    # the post, commented by Camille (from A) and by Karim (on B)
    k.comment(camille.home, on_a, post_id, "Merci, Noé viendra")
    k.comment(karim, ce1.class_id, post_id, "Je l'accompagnerai")
    wait_until(
        lambda: comments(ce1) == ["Je l'accompagnerai", "Merci, Noé viendra"],
        timeout=DELIVERY, what="both comments on B", logs=[a, b],
    )  # fmt: skip

    # B's teacher opens Noé's family thread (the teacher, Karim, Camille); Karim writes
    # in it on B and Camille answers from A, sealed to the same three
    seen = chat(ce1.teacher, ce1.class_id)
    family, teacher_me = seen["family_members"][str(noe)], seen["me"]
    assert family == sorted([teacher_me, karim.me, camille.home.me])
    assert list(chat(camille.home, on_a)["family_members"].values()) == [family]  # A knows it too
    opening = _seal(ce1.teacher, ce1.class_id, "conversation", {"title": ""}, family)
    group = str(
        ce1.teacher.post(
            f"/api/v1/classes/{ce1.class_id}/conversations",
            {"kind": "family", "child": noe, **opening},
        )["id"]
    )
    say(karim, ce1.class_id, group, "Je conduis mardi")
    wait_until(
        lambda: any(c["id"] == group for c in chat(camille.home, on_a)["conversations"]),
        timeout=DELIVERY, what="the family thread on A", logs=[b, a],
    )  # fmt: skip
    wait_until(
        lambda: texts(camille.home, on_a, group) == ["Je conduis mardi"],
        timeout=DELIVERY, what="Karim's message on A", logs=[b, a],
    )  # fmt: skip
    say(camille.home, on_a, group, "Merci, je fais le retour")
    wait_until(
        lambda: texts(karim, ce1.class_id, group) == ["Je conduis mardi", "Merci, je fais le retour"],
        timeout=DELIVERY, what="Camille's answer on B", logs=[a, b],
    )  # fmt: skip
    # and a file Camille uploaded at home (A keeps a guardian's uploads)
    blob = upload(camille.home, on_a, secrets.token_bytes(64))
    blob_file = BlobStore(a.data_dir / "blobs").path(blob)
    assert blob_file.exists()

    def guardians_on_b() -> list[str]:
        roster = ce1.teacher.get(f"/api/v1/classes/{ce1.class_id}")["children"]
        return sorted(g["display_name"] for ch in roster for g in ch["guardians"])

    def group_members() -> list[str]:
        page = karim.get(f"/api/v1/classes/{ce1.class_id}/conversations/{group}")
        return sorted(page["conversation"]["members"])

    assert guardians_on_b() == ["Camille Martin", "Karim Bernard"]
    assert group_members() == family
    assert not k.group_view(ce1.teacher, ce1.class_id)["to_remove"]

    # C, a peer of B but not Camille's school, signs a Delete of her: refused, she stays
    person = f"{a.origin}/users/{camille.home.me.split('@', 1)[0]}"
    forged = forged_delete(c, b, person, f"{b.origin}/classes/{ce1.class_id}")
    assert forged.status_code == 200, forged.text
    [result] = forged.json()["results"].values()
    assert result["error"] == "origin_mismatch", result
    assert comments(ce1) == ["Je l'accompagnerai", "Merci, Noé viendra"]
    assert guardians_on_b() == ["Camille Martin", "Karim Bernard"]

    # Camille deletes her account at home; A's first send of the Delete reaches B, but
    # B's answer is lost: A sends the same transaction again, and B applies it once
    sent = len(inbox_puts(a_to_b))
    a_to_b.drop_response()
    camille.home.post("/api/v1/me/erasure", {"confirm": "supprimer"}, expect=200)
    wait_until(
        lambda: any(r.action == "response_dropped" for r in inbox_puts(a_to_b)[sent:]),
        timeout=DELIVERY, what="A's Delete reaches B, its answer lost", logs=[a, a_to_b],
    )  # fmt: skip
    a_to_b.passthrough()

    def sent_again() -> bool:
        puts = inbox_puts(a_to_b)[sent:]
        lost = {r.path for r in puts if r.action == "response_dropped"}
        return all(any(r.path == p and r.action == "forwarded" for r in puts) for p in lost)

    wait_until(sent_again, timeout=DELIVERY, what="A sends it again", logs=[a, a_to_b])
    assert inbox_puts(a_to_b)[sent].action == "response_dropped"
    received = admins["b"].get("/api/v1/admin/audit?action=erasure_received")
    assert received["total"] == 1, received  # her one shadow account, erased once

    # B, through its own API: her words are gone, the threads and the other family's stay
    assert comments(ce1) == ["Je l'accompagnerai"]
    assert [s.comments for s in k.read_feed(karim)] == [("Je l'accompagnerai",)]
    assert texts(karim, ce1.class_id, group) == ["Je conduis mardi"]
    # her membership: not Noé's guardian any more, out of his family thread, her key to remove
    assert guardians_on_b() == ["Karim Bernard"]
    assert group_members() == sorted([teacher_me, karim.me])
    to_remove = [m["member"] for m in k.group_view(ce1.teacher, ce1.class_id)["to_remove"]]
    assert to_remove == [camille.home.me], to_remove
    people = {p["member"] for p in chat(ce1.teacher, ce1.class_id)["people"]}
    assert camille.home.me not in people and karim.me in people

    # A: her session and the file she uploaded are gone
    assert not blob_file.exists()
    assert camille.home.http.get(f"/api/v1/blobs/{blob}").status_code == 401
