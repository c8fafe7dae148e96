"""Conversations across real nodes: a carpool group between a parent of the class's own
school (A) and a parent whose home is another school (B), a third parent who sees nothing of
it, and a family thread B's parent opens with A's teacher and the child's other guardian,
a parent of A (B knows the child's whole family, so A takes her first message at once).

Each person uses their own node's JSON API and encrypts and decrypts with the Python
reference client, as their browser would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from node import refclient_groups as rc
from node.e2e import messages as m
from node.e2e.encoding import b64url_decode, b64url_encode
from tests.multinode import classes as k
from tests.multinode.classes import (
    DELIVERY,
    Session,
    family_at_home,
    joined,
    set_up_schools,
    teacher_class,
)
from tests.multinode.cluster import Cluster
from tests.multinode.waiting import wait_until

FAST_RETRIES = {"federation_backoff_factor": 0.01}


def _keys(session: Session, class_id: int) -> tuple[Any, dict[int, bytes]]:
    view = k.group_view(session, class_id)
    session.me = view["me"]
    assert session.keys is not None
    return rc.open_epoch_keys(view, session.keys)


def _seal(session: Session, class_id: int, kind: str, body: Any, to: list[str], parent: str | None = None) -> Any:  # fmt: skip
    state, keys = _keys(session, class_id)
    assert session.keys is not None
    return rc.encrypt(
        session.keys, session.me, state, keys, kind, body, parent=parent, to=sorted(to)
    )


def chat(session: Session, class_id: int) -> dict[str, Any]:
    found: dict[str, Any] = session.get(f"/api/v1/classes/{class_id}/chat")
    return found


def say(session: Session, class_id: int, conversation: str, text: str) -> None:
    page = session.get(f"/api/v1/classes/{class_id}/conversations/{conversation}")
    request = _seal(
        session, class_id, "chat", {"text": text}, page["reply_to"], parent=conversation
    )
    session.post(f"/api/v1/classes/{class_id}/conversations/{conversation}/messages", request)


def texts(session: Session, class_id: int, conversation: str) -> list[str]:
    page = session.get(f"/api/v1/classes/{class_id}/conversations/{conversation}")
    state, keys = _keys(session, class_id)
    assert session.keys is not None
    return [
        rc.decrypt(item, state, keys, session.keys, session.me)["text"]
        for item in page["items"]
        if item["kind"] == "chat"
    ]


def test_a_carpool_group_across_two_schools(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster(("a", "b"), config=FAST_RETRIES)
    a, b = cluster
    admins = set_up_schools(cluster, ("a", "b"))
    ce1 = teacher_class(admins["a"], "CE1 A")
    # Karim and Sam are parents at A; Camille's home is B
    karim_slip = k.register_guardian(
        ce1, k.add_child(ce1, "Tom", "Bernard"), "Karim Bernard", "+33639980003"
    )
    sam_slip = k.register_guardian(
        ce1, k.add_child(ce1, "Zoé", "Petit"), "Sam Petit", "+33639980004"
    )
    karim, sam = k.onboard_guardian(a, karim_slip), k.onboard_guardian(a, sam_slip)
    k.approve_waiting(ce1, 2)
    camille = family_at_home(admins["b"], "Camille Martin", "+33639980001", "Léa")
    noe_at_a = joined(camille, ce1, "Noé").child_id
    # Noé's other guardian, Inès, lives at A
    ines = k.onboard_guardian(a, k.register_guardian(ce1, noe_at_a, "Inès Martin", "+33639980005"))
    k.approve_waiting(ce1)
    ce1.teacher.send(
        "PUT", f"/api/v1/classes/{ce1.class_id}/chat/settings", {"parent_chat": "open"}
    )
    k.post(ce1, "Bienvenue")
    wait_until(
        lambda: any(i["class_name"] == "CE1 A" for i in k.feed_items(camille.home)),
        timeout=DELIVERY, what="CE1 A's post on B", logs=[a, b],
    )  # fmt: skip
    on_b = next(i["class_id"] for i in k.feed_items(camille.home) if i["class_name"] == "CE1 A")
    wait_until(
        lambda: chat(camille.home, on_b)["settings"]["parent_chat"] == "open",
        timeout=DELIVERY, what="B hears parent chat is open", logs=[a, b],
    )  # fmt: skip

    # Karim (A) opens a carpool group with Camille (B)
    for session, class_id in ((karim, ce1.class_id), (sam, ce1.class_id), (camille.home, on_b)):
        session.post(f"/api/v1/classes/{class_id}/chat/conduct", expect=200)
    _keys(camille.home, on_b)
    _keys(karim, ce1.class_id)
    opening = _seal(
        karim, ce1.class_id, "conversation", {"title": "Covoiturage"}, [karim.me, camille.home.me]
    )
    made = karim.post(
        f"/api/v1/classes/{ce1.class_id}/conversations",
        {"kind": "group", "members": [camille.home.me], **opening},
    )
    group = str(made["id"])
    say(karim, ce1.class_id, group, "Je conduis mardi")
    wait_until(
        lambda: any(c["id"] == group for c in chat(camille.home, on_b)["conversations"]),
        timeout=DELIVERY, what="the group on B", logs=[a, b],
    )  # fmt: skip
    wait_until(
        lambda: texts(camille.home, on_b, group) == ["Je conduis mardi"],
        timeout=DELIVERY, what="Karim's message on B", logs=[a, b],
    )  # fmt: skip

    # Camille answers from B; Karim reads it on A
    say(camille.home, on_b, group, "Merci, je fais le retour")
    wait_until(
        lambda: texts(karim, ce1.class_id, group) == ["Je conduis mardi", "Merci, je fais le retour"],
        timeout=DELIVERY, what="Camille's answer on A", logs=[b, a],
    )  # fmt: skip

    # Camille reports Karim's message from B: A's teacher reads that one message
    page = camille.home.get(f"/api/v1/classes/{on_b}/conversations/{group}")
    item = next(i for i in page["items"] if i["author"] == karim.me)
    state, keys = _keys(camille.home, on_b)
    assert camille.home.keys is not None
    key = m.open_message_key(
        state.group, item["id"], item["key"], camille.home.me, camille.home.keys.enc_sk,
        camille.home.keys.enc_pk,
    )  # fmt: skip
    teacher_me = next(
        p["member"] for p in chat(camille.home, on_b)["people"] if p["role"] == "teacher"
    )
    report = _seal(
        camille.home, on_b, "report", {"key": b64url_encode(key), "note": "à vérifier"},
        [teacher_me, camille.home.me], parent=item["id"],
    )  # fmt: skip
    camille.home.post(
        f"/api/v1/classes/{on_b}/conversations/{group}/messages/{item['id']}/report", report
    )

    def reported_on_a() -> list[str]:
        found = ce1.teacher.get(f"/api/v1/classes/{ce1.class_id}/chat/reports")["reports"]
        t_state, t_keys = _keys(ce1.teacher, ce1.class_id)
        assert ce1.teacher.keys is not None
        out = []
        for r in found:
            body = rc.decrypt(r, t_state, t_keys, ce1.teacher.keys, ce1.teacher.me)
            k_m = b64url_decode(body["key"], length=32)
            out.append(m.decrypt_message(r["reported"], k_m)["text"])
        return out

    wait_until(
        lambda: reported_on_a() == ["Je conduis mardi"],
        timeout=DELIVERY, what="B's report on A", logs=[b, a],
    )  # fmt: skip

    # Sam, a parent outside the group, sees nothing of it
    assert [c["id"] for c in chat(sam, ce1.class_id)["conversations"]] == []
    sam.get(f"/api/v1/classes/{ce1.class_id}/conversations/{group}", expect=404)

    # Camille opens a family thread about Noé from B: B names his whole family as A does
    # (the teacher, Camille and Inès), so A takes her message sealed to them at once
    noe = next(c for c in chat(camille.home, on_b)["children"])
    family = chat(ce1.teacher, ce1.class_id)["family_members"][str(noe_at_a)]
    assert len(family) == 3
    assert chat(camille.home, on_b)["family_members"] == {str(noe[0]): family}
    opening = _seal(camille.home, on_b, "conversation", {"title": ""}, family)
    made = camille.home.post(
        f"/api/v1/classes/{on_b}/conversations", {"kind": "family", "child": noe[0], **opening}
    )
    thread = str(made["id"])
    say(camille.home, on_b, thread, "Noé sera en retard demain")
    _keys(ce1.teacher, ce1.class_id)
    wait_until(
        lambda: texts(ce1.teacher, ce1.class_id, thread) == ["Noé sera en retard demain"],
        timeout=DELIVERY, what="the family thread on A", logs=[b, a],
    )  # fmt: skip
    _keys(ines, ce1.class_id)
    assert texts(ines, ce1.class_id, thread) == ["Noé sera en retard demain"]
    say(ce1.teacher, ce1.class_id, thread, "Merci de nous prévenir")
    wait_until(
        lambda: texts(camille.home, on_b, thread)[-1:] == ["Merci de nous prévenir"],
        timeout=DELIVERY, what="the teacher's answer on B", logs=[a, b],
    )  # fmt: skip

    # an absence note for Noé, written on B, shows on the teacher's day list on A
    today = camille.home.get(f"/api/v1/classes/{on_b}/absences")["today"]
    [child] = camille.home.get(f"/api/v1/classes/{on_b}/absences")["children"]
    body = {"kind": "late", "first_day": today, "last_day": today, "arrival": "10:00",
            "text": "Rendez-vous chez le dentiste"}  # fmt: skip
    note = _seal(camille.home, on_b, "absence", body, child["to"])
    camille.home.post(
        f"/api/v1/classes/{on_b}/absences",
        {**note, "child": child["id"], "kind": "late", "first_day": today},
    )

    def on_the_teachers_list() -> list[str]:
        notes = ce1.teacher.get(f"/api/v1/classes/{ce1.class_id}/absences?day={today}")["notes"]
        state, keys = _keys(ce1.teacher, ce1.class_id)
        assert ce1.teacher.keys is not None
        return [
            rc.decrypt(n, state, keys, ce1.teacher.keys, ce1.teacher.me)["text"]
            for n in notes
            if n["child_name"] == "Noé" and n["kind"] == "late"
        ]

    wait_until(
        lambda: on_the_teachers_list() == ["Rendez-vous chez le dentiste"],
        timeout=DELIVERY, what="B's absence note on A", logs=[b, a],
    )  # fmt: skip
