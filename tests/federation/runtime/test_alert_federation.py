"""Emergency alerts between schools (NP/1 §6.5): the school's side and the guardian's home side.

School side: this node's school has a guardian living on node B (a FakePeer);
the admin's alert group names them, B gets the group's log and their key on
the alerts stream, ahead of any other stream, then each alert thread; B's
"Read" of the alert is that guardian's acknowledgement on the dashboard.

Home side: school B sends its alerts stream to this node, whose guardian has a
child at B; the alert reaches them (push, list, decrypted page), a forged one
is refused, and their acknowledgement goes back to B.
"""

from __future__ import annotations

import json
from typing import Any

from quart import Quart
from quart.typing import TestClientProtocol as Client

from node import refclient_groups as rc
from node.e2e import messages as m
from node.e2e.encoding import b64url_encode
from node.e2e.keys import generate_account_keys
from node.services import alert_reach, alerts, push_delivery, school_group
from node.services.context import ServiceContext
from node.storage import alerts as alert_store
from node.storage import notifications as notification_store
from node.storage.db import Storage
from tests.alert_factories import add_alert_group
from tests.conftest import PUBLIC_URL
from tests.factories import texts_to
from tests.federation.runtime import test_class_mirror, test_class_stream
from tests.federation.runtime.peer_factories import B, FakePeer, activity
from tests.federation.runtime.test_class_mirror import PHONE, ClassAtB, accept_and_open
from tests.federation.runtime.test_class_mirror import sent_to_b as sent_from_home
from tests.federation.runtime.test_class_stream import (
    ACTOR,
    B_STREAM,
    MEMBER,
    remote_guardian,
    sent_to_b,
    summary,
)
from tests.feed_factories import ClassFeed, as_json
from tests.push_factories import fake_browser

ALERTS = PUBLIC_URL + "/alerts"

# the fixtures of the class tests: this school with a class (cf), school B (peer), and
# this node as the home of a guardian of B's class (school_b)
cf = test_class_stream.cf
peer = test_class_stream.peer
school_b = test_class_mirror.school_b


# -- the school's side ------------------------------------------------------------------


def test_the_guardians_node_gets_the_group_then_the_alert_first(cf: ClassFeed) -> None:
    them = remote_guardian(cf, cf.guardians[1].child_id or 0)
    cf.approve_all()
    before = len(sent_to_b(cf))
    school = add_alert_group(cf.storage, cf.ctx, cf)
    assert school.view(school.admin)["add"] == []  # the guardian at B was added too
    sent = school.send("lockdown", "Confinement.")
    queue = sent_to_b(cf)
    on_alerts = [a for a in queue if a["stream"] == ALERTS]
    # the priority lane: the alerts stream comes before the class stream's backlog
    assert queue[: len(on_alerts)] == on_alerts and len(queue) > before
    kinds = summary(on_alerts)
    entries = kinds.count(("Create", "GroupEntry"))
    assert kinds == [("Create", "GroupEntry")] * entries + [
        ("Create", "EpochKey"),
        ("Create", "Alert"),
    ]
    assert [a["object"]["entry"]["seq"] for a in on_alerts[:entries]] == list(range(entries))
    assert on_alerts[entries]["object"]["envelope"]["member"] == MEMBER
    alert = on_alerts[-1]["object"]
    assert alert["id"] == f"{ALERTS}/{sent.alert_id}" and alert["version"] == 1
    assert alert["messages"][0]["message"]["header"]["kind"] == "alert"
    assert alert["smsDelay"] == 120 and "Confinement" not in alert["smsText"]
    assert all(a["to"] == [ACTOR] for a in on_alerts)
    # B texts and pushes its guardian; this node does neither
    row = cf.storage.call(alert_store.select_recipient,
                          cf.storage.call(alert_store.select_alert, sent.alert_id).id,  # type: ignore[union-attr]
                          them.actor.account_id)  # fmt: skip
    assert row is not None and row.sms_state == "remote"

    def pushes() -> int:
        query = notification_store.Notification.select().where(
            notification_store.Notification.account == them.actor.account_id
        )
        return query.count()  # type: ignore[no-any-return]

    assert cf.storage.call(pushes) == 0
    follow = school.alert_message("all_clear", "", parent=sent.alert_id)
    cf.storage.call(
        alerts.follow_up, cf.ctx, school.admin.actor, sent.alert_id, follow, "all_clear"
    )
    update = [a for a in sent_to_b(cf) if a["stream"] == ALERTS][-1]
    assert update["type"] == "Update" and update["object"]["version"] == 2
    assert update["object"]["state"] == "closed"


async def test_the_acknowledgement_from_b_counts_on_the_dashboard(
    cf: ClassFeed, client: Client, peer: FakePeer
) -> None:
    from tests.federation.runtime.peer_factories import put_transaction, transaction, txn_id

    them = remote_guardian(cf, cf.guardians[1].child_id or 0)
    cf.approve_all()
    school = add_alert_group(cf.storage, cf.ctx, cf)
    sent = school.send("evacuation", "Au gymnase.")

    def state_of_parent_at_b() -> str:
        reach = cf.storage.call(alert_reach.dashboard, cf.ctx, school.admin.actor, sent.alert_id)
        states = {g.name: g.state for c in reach.classes for ch in c.children for g in ch.guardians}
        return states["Parent à B"]

    assert state_of_parent_at_b() == "waiting"
    for seq, type_ in enumerate(("View", "Read"), start=1):
        item = activity(peer, seq, type=type_, stream=B_STREAM, actor=ACTOR,
                        object=f"{ALERTS}/{sent.alert_id}", to=[ALERTS])  # fmt: skip
        txn = txn_id()
        body = transaction(peer, txn, [item], streams={B_STREAM: (seq - 1, seq)})
        answer = await (await put_transaction(client, peer, txn, body)).get_json()
        assert answer["results"] == {item["id"]: {}}, answer
        assert state_of_parent_at_b() == {"View": "delivered", "Read": "acknowledged"}[type_]
    assert them.actor.account_id


# -- the guardian's home side --------------------------------------------------------------

B_ADMIN = "1@ecole-b.example"
B_ALERTS = B + "/alerts"


class AlertsAtB:
    """B's admin, their school group naming our guardian, and B's alerts stream."""

    def __init__(self, b: ClassAtB) -> None:
        self.b = b
        self.keys = generate_account_keys()
        self.log, envelopes, self.epoch_key = rc.setup_school_group(self.keys, B_ADMIN)
        candidate = {"member": b.me, "sign_pk": b64url_encode(b.keys.sign_pk),
                     "enc_pk": b64url_encode(b.keys.enc_pk)}  # fmt: skip
        added, self.sealed = rc.add_guardians(self.keys, self.log, [candidate], self.epoch_key)
        self.log += added

    def on_stream(self, type_: str, obj: dict[str, Any]) -> dict[str, Any]:
        seq = self.b.seq[B_ALERTS] = self.b.seq.get(B_ALERTS, 0) + 1
        return activity(self.b.peer, seq, type=type_, stream=B_ALERTS, actor=B_ALERTS,
                        object=obj, to=[self.b.actor])  # fmt: skip

    def group(self) -> list[dict[str, Any]]:
        items = [
            self.on_stream(
                "Create",
                {
                    "id": f"{B_ALERTS}/log/{e['seq']}",
                    "type": "GroupEntry",
                    "version": 1,
                    "attributedTo": B_ALERTS,
                    "group": e["group"],
                    "entry": e,
                },
            )  # fmt: skip
            for e in self.log
        ]
        env = self.sealed[0]
        items.append(self.on_stream("Create", {
            "id": f"{B_ALERTS}/keys/0/{self.b.me}", "type": "EpochKey", "version": 1,
            "attributedTo": B_ALERTS, "envelope": env,
        }))  # fmt: skip
        return items

    def alert(self, messages: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
        first = messages[0]["header"]["id"]
        obj = {
            "id": f"{B_ALERTS}/{first}", "type": "Alert", "version": len(messages),
            "attributedTo": B_ALERTS, "group": self.log[0]["group"], "template": "lockdown",
            "drill": False, "state": "active", "school": "École B", "sender": "Mme Directrice",
            "smsText": "Urgent message from École B: open Carnet now.", "smsDelay": 120,
            "sent": "2026-11-29T08:00:00Z",
            "messages": [{"id": m["header"]["id"], "template": "lockdown",
                          "published": "2026-11-29T08:00:00Z", "message": m} for m in messages],
        } | changes  # fmt: skip
        return self.on_stream("Create" if len(messages) == 1 else "Update", obj)

    def message(self, text: str, parent: str | None = None) -> dict[str, Any]:
        state = rc.g.verify_log(self.log)
        made = rc.encrypt_alert(self.keys, B_ADMIN, state, {0: self.epoch_key},
                                "lockdown", text, False, parent)  # fmt: skip
        message: dict[str, Any] = made["message"]
        return message

    def forged(self, text: str, author: str, keys: Any) -> dict[str, Any]:
        """An alert signed by ``keys`` (the reference client refuses to make one)."""
        group, message_id = self.log[0]["group"], m.new_message_id()
        key = m.message_key_from_epoch(self.epoch_key, group, 0, message_id)
        sealed = m.encrypt_message(
            sign_sk=keys.sign_sk, sign_pk=keys.sign_pk, author=author, group=group, kind="alert",
            body={"template": "lockdown", "text": text, "drill": False}, message_key=key,
            epoch=0, message_id=message_id, at=1_790_000_000,
        )  # fmt: skip
        return sealed.wire()


async def test_another_schools_alert_reaches_our_guardian_who_acknowledges_it(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: ClassAtB
) -> None:
    b = school_b
    await accept_and_open(b, client)
    at_b = AlertsAtB(b)
    answers = await b.send(client, *at_b.group())
    assert all(r == {} for r in answers.values()), answers
    first = at_b.message("Confinement à l'école B.")
    item = at_b.alert([first])
    assert await b.send(client, item) == {item["id"]: {}}

    [listed] = storage.call(alerts.list_alerts, ctx, b.guardian)
    assert listed.school == "École B" and listed.sent_by == "Mme Directrice"
    view = as_json(storage.call(alerts.get_alert, ctx, b.guardian, listed.id))
    group = as_json(storage.call(school_group.view, ctx, b.guardian, view["group"]))
    state, keys = rc.open_epoch_keys(group, b.keys)
    assert rc.decrypt_alert(view["messages"][0], state, keys)["text"] == "Confinement à l'école B."

    def pushes() -> list[str]:
        query = notification_store.Notification.select().where(
            notification_store.Notification.account == b.guardian.account_id
        )
        return [n.urgency for n in query if n.kind == "alert"]

    assert storage.call(pushes) == ["high"]
    # no device to push to: our SMS gateway texts them at once, with what B says
    [text] = [t for t in texts_to(storage, PHONE) if t.purpose == "alert"]
    assert text.body == "Urgent message from École B: open Carnet now."
    # the same version again changes nothing; a follow-up adds its message and notifies again
    again = b.resigned(item)
    assert await b.send(client, again) == {again["id"]: {}}
    follow = at_b.alert([first, at_b.message("Restez dans les classes.", parent=listed.id)])
    assert await b.send(client, follow) == {follow["id"]: {}}
    assert len(as_json(storage.call(alerts.get_alert, ctx, b.guardian, listed.id))["messages"]) == 2
    assert storage.call(pushes) == ["high", "high"]

    storage.call(alerts.acknowledge, ctx, b.guardian, listed.id)
    told = [a for a in sent_from_home(storage) if a["type"] in ("View", "Read")]
    # opening the alert is its delivery (once), then the acknowledgement
    assert [a["type"] for a in told] == ["View", "Read"]
    for item in told:
        assert item["object"] == f"{B_ALERTS}/{listed.id}"
        assert item["actor"].endswith(f"/users/{b.guardian.account_id}")


async def test_a_forged_alert_is_refused_and_shows_nothing(
    client: Client, storage: Storage, ctx: ServiceContext, school_b: ClassAtB
) -> None:
    b = school_b
    await accept_and_open(b, client)
    at_b = AlertsAtB(b)
    await b.send(client, *at_b.group())
    # signed by a key that is not B's emergency role, claiming to be B's admin; then by a
    # member of the group who is not in that role (our own guardian's valid key)
    for forged in (
        at_b.forged("Faux confinement", B_ADMIN, generate_account_keys()),
        at_b.forged("Faux confinement", b.me, b.keys),
    ):
        item = at_b.alert([forged])
        answer = await b.send(client, item)
        assert "emergency-role" in answer[item["id"]]["message"], json.dumps(answer)
    assert storage.call(alerts.list_alerts, ctx, b.guardian) == []


async def test_a_push_our_guardians_device_took_is_reported_as_delivered(
    app: Quart, client: Client, storage: Storage, ctx: ServiceContext, school_b: ClassAtB
) -> None:
    await app.extensions["carnet_push"].stop()  # this test plays the push worker
    b = school_b
    await accept_and_open(b, client)
    fake_browser().subscribe(storage, ctx, b.guardian)
    at_b = AlertsAtB(b)
    await b.send(client, *at_b.group(), at_b.alert([at_b.message("Confinement.")]))
    jobs, _ = storage.call(push_delivery.claim_due, ctx)
    [job] = [j for j in jobs if j.payload["kind"] == "alert"]
    ok = [push_delivery.DeviceResult(job.targets[0].subscription_id, "ok")]
    storage.call(push_delivery.record_results, ctx, {job.notification_id: ok})
    storage.call(push_delivery.record_results, ctx, {job.notification_id: ok})  # again: no repeat
    [view] = [a for a in sent_from_home(storage) if a["type"] == "View"]
    assert view["object"].startswith(B_ALERTS + "/")
    assert [t for t in texts_to(storage, PHONE) if t.purpose == "alert"] == []  # after the delay
