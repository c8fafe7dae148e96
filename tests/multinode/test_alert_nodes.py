"""Emergency alerts across real nodes (NP/1 §6.5, §9.1): what guardians and the school see.

School A's admin sends an alert; its guardians living on A read it on A, and
those living on B and C (families who joined a class of A from their own
school's node) read it on their own node, decrypted with the keys of A's
school group that A sent their node on its alerts stream. Their "I have read
this" goes back to A's reach dashboard; their own node texts those who have
not acknowledged after A's delay. Every step goes through the JSON API as a
browser would (``tests/multinode/classes.py``, ``tests/multinode/alerts.py``);
every cross-node effect is polled with ``wait_until`` (a ceiling, not a
measurement).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.multinode import alerts as al
from tests.multinode import classes as k
from tests.multinode.classes import (
    DELIVERY,
    Family,
    SchoolClass,
    family_at_home,
    joined,
    set_up_schools,
    teacher_class,
)
from tests.multinode.cluster import Cluster
from tests.multinode.faultproxy import FaultProxy, SeenRequest
from tests.multinode.nodes import Node
from tests.multinode.waiting import wait_until

#: Retry delays ×0.01 (10 s → 0.1 s, 1 h → 36 s): a failed delivery is retried within the test.
FAST_RETRIES = {"federation_backoff_factor": 0.01}
LOCKDOWN = "Confinement : restez chez vous, l'école est fermée."
#: The shortest SMS delay a school may choose (``node.services.alerts.SMS_DELAY_RANGE``).
MIN_SMS_DELAY = 30


def family_here(school_class: SchoolClass, name: str, phone: str, child: str) -> Family:
    """A guardian of a child in ``school_class``, living on that class's own node, approved."""
    child_id = k.add_child(school_class, child, "Durand")
    slip = k.register_guardian(school_class, child_id, name, phone)
    home = k.onboard_guardian(school_class.node, slip)
    k.approve_waiting(school_class)
    return Family(name, phone, home, school_class)


def second_family(first: Family, name: str, phone: str, child: str) -> Family:
    """Another guardian of the same home node, in ``first``'s own class there."""
    return family_here(first.own_class, name, phone, child)


def wait_acknowledged(
    school: al.AlertSchool, alert_id: str, count: int, *logs: Node
) -> dict[str, Any]:
    """Wait until A's dashboard counts ``count`` acknowledgements; the dashboard."""

    def counted() -> dict[str, Any] | None:
        dashboard = al.reach(school, alert_id)
        return dashboard if dashboard["acknowledged"] == count else None

    return wait_until(
        counted,
        timeout=DELIVERY, what=f"{count} acknowledgement(s) on {school.node.name}'s dashboard",
        logs=[school.node, *logs],
    )  # fmt: skip


def carried(request: SeenRequest) -> list[tuple[str, str]]:
    """The alerts and class posts in one transaction, in order: ``("alert"|"post", id)``."""
    found = []
    for activity in json.loads(request.body)["activities"]:
        obj = activity["object"]
        if isinstance(obj, dict) and obj.get("type") == "Alert":
            found.append(("alert", str(obj["id"])))
        elif "/classes/" in activity["stream"] and activity["type"] == "Create":
            found.append(("post", str(obj["id"] if isinstance(obj, dict) else obj)))
    return found


def applied_in_order(proxy: FaultProxy, since: int) -> list[tuple[str, str]]:
    """The alerts and class posts the link carried to the receiver, in the order it applied them.

    Only transactions the receiver answered 200 (the sender waits for each answer
    before the next); an item sent again counts once.
    """
    seen: list[tuple[str, str]] = []
    for request in proxy.requests[since:]:
        if request.method == "PUT" and request.path.startswith("/np/inbox/"):
            if request.status == 200 and request.answered:
                seen += [item for item in carried(request) if item not in seen]
    return seen


def test_an_alert_reaches_every_guardian_on_their_own_node_and_all_acknowledge(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster(("a", "b", "c"), config=FAST_RETRIES)
    a, b, c = cluster
    admins = set_up_schools(cluster, ("a", "b"), ("a", "c"))
    ce1 = teacher_class(admins["a"], "CE1 A")
    alice = family_here(ce1, "Alice Durand", "+33639980011", "Emma")
    bruno = family_here(ce1, "Bruno Petit", "+33639980012", "Hugo")
    camille = family_at_home(admins["b"], "Camille Martin", "+33639980001", "Léa")
    karim = family_at_home(admins["c"], "Karim Bernard", "+33639980003", "Tom")
    joined(camille, ce1, "Noé")
    joined(karim, ce1, "Jules")
    everyone = [alice, bruno, camille, karim]

    # A's admin opens the Alerts page: the group holds the guardians of A and of B and C
    school = al.set_up_school_group(admins["a"])
    hosts = [member.split("@", 1)[1] for member in al.guardian_members(school)]
    assert sorted(hosts) == sorted(node.origin.split("://", 1)[1] for node in (a, a, b, c))
    assert al.sync_members(school) == []  # nobody missing any more
    alert_id = al.send_alert(school, "lockdown", LOCKDOWN)

    for family in everyone:  # each on their own node, decrypted with A's group keys
        shown = al.wait_alert(family.home, alert_id, 1, a)
        assert shown.texts == [LOCKDOWN] and shown.template == "lockdown", shown
        assert shown.state == "active" and not shown.acknowledged
        assert shown.school == (None if family.home.node is a else a.school)
        assert [x["id"] for x in al.my_alerts(family.home)] == [alert_id]
        al.acknowledge(family.home, alert_id)
        assert al.read_alert(family.home, alert_id).acknowledged

    dashboard = wait_acknowledged(school, alert_id, 4, b, c)
    assert dashboard["guardians"] == 4 and dashboard["not_reached"] == 0, dashboard
    assert dashboard["children"] == dashboard["children_reached"] == 4, dashboard
    assert al.guardian_states(dashboard) == {f.name: "acknowledged" for f in everyone}

    # the all clear ends it everywhere: B and C get the thread's new version
    assert al.all_clear(school, alert_id, "Fin du confinement.") == "closed"
    for family in everyone:
        shown = al.wait_alert(family.home, alert_id, 2, a)
        assert shown.texts == [LOCKDOWN, "Fin du confinement."]
        assert [t for t, _ in shown.messages] == ["lockdown", "all_clear"]
        assert shown.state == "closed" and shown.acknowledged
    # nobody has a push device: each node texted its own guardians at once, A never
    # those of B and C
    for node, phones in ((a, {alice.phone, bruno.phone}), (b, {camille.phone}), (c, {karim.phone})):
        wait_until(
            lambda node=node, phones=phones: {t["to"] for t in al.alert_texts(node)} == phones,
            timeout=DELIVERY, what=f"{node.name} texts its own guardians", logs=[node],
        )  # fmt: skip
        assert len(al.alert_texts(node)) == len(phones)


@pytest.mark.transport
def test_the_home_node_texts_once_whoever_has_not_acknowledged_after_the_delay(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster(("a", "b"), config=FAST_RETRIES)
    a, b = cluster
    admins = set_up_schools(cluster, ("a", "b"))
    ce1 = teacher_class(admins["a"], "CE1 A")
    camille = family_at_home(admins["b"], "Camille Martin", "+33639980001", "Léa")
    karim = second_family(camille, "Karim Bernard", "+33639980003", "Tom")
    # a guardian of B who has not logged in yet: their login codes show B's SMS worker passes
    marker = k.register_guardian(
        camille.own_class, k.add_child(camille.own_class, "Zoé", "Roux"), "Marie Roux",
        "+33639980009",
    )  # fmt: skip
    joined(camille, ce1, "Noé")
    joined(karim, ce1, "Jules")
    for family in (camille, karim):  # with a device, a text waits for A's delay
        al.turn_on_notifications(family.home)
    school = al.set_up_school_group(admins["a"])
    assert al.set_policy(school, sms_delay_seconds=MIN_SMS_DELAY)["sms_delay_seconds"] == 30

    sent_at = dt.datetime.now(dt.UTC)
    alert_id = al.send_alert(school, "lockdown", LOCKDOWN)
    al.wait_alert(karim.home, alert_id, 1, a)
    al.acknowledge(karim.home, alert_id)
    al.wait_alert(camille.home, alert_id, 1, a)  # Camille opens it but does not acknowledge
    assert al.alert_texts(b) == []  # B texts nobody before A's delay

    texted = wait_until(
        lambda: al.alert_texts(b, camille.phone), timeout=MIN_SMS_DELAY + DELIVERY,
        what="B texts Camille after A's delay", logs=[b, a],
    )  # fmt: skip
    assert dt.datetime.fromisoformat(texted[0]["at"]) >= sent_at + dt.timedelta(
        seconds=MIN_SMS_DELAY
    )
    assert a.school in texted[0]["text"]  # the school that sent it, content-free
    assert "Confinement" not in texted[0]["text"]
    al.flush_sms(b, marker)  # a whole pass of B's SMS worker since: nothing else was due
    assert [t["to"] for t in al.alert_texts(b)] == [camille.phone]  # once, and Karim never
    assert al.alert_texts(a) == []  # A leaves texting B's guardians to B

    dashboard = al.reach(school, alert_id)
    states = al.guardian_states(dashboard)
    assert states["Karim Bernard"] == "acknowledged", dashboard
    assert states["Camille Martin"] != "acknowledged", dashboard


@pytest.mark.transport
def test_an_alert_overtakes_the_backlog_of_class_posts(
    make_cluster: Callable[..., Cluster], link: Callable[..., FaultProxy]
) -> None:
    cluster = make_cluster(("a", "b"), start=False, config=FAST_RETRIES)
    a, b = cluster
    a_to_b = link(a, b)
    cluster.start()
    admins = set_up_schools(cluster, ("a", "b"))
    ce1 = teacher_class(admins["a"], "CE1 A")
    camille = family_at_home(admins["b"], "Camille Martin", "+33639980001", "Léa")
    joined(camille, ce1, "Noé")
    school = al.set_up_school_group(admins["a"])
    group = al.group_view(school.admin)["group_id"]
    wait_until(
        lambda: al.group_view(camille.home, group)["is_member"], timeout=DELIVERY,
        what="B has A's group and Camille's key", logs=[a, b],
    )  # fmt: skip

    # A's transactions to B hang unanswered while A's teacher posts 200 messages: a
    # backlog for B (B stays up and pulls nothing: it does not know it is missing anything)
    since, pulls = len(a_to_b.requests), b.log_text().count("/np/streams/")
    a_to_b.blackhole()
    posted = [f"Message {n:03d}" for n in range(200)]
    k.post_many(ce1, posted)
    alert_id = al.send_alert(school, "evacuation", "Évacuation vers le gymnase.")
    a_to_b.passthrough()

    assert al.wait_alert(camille.home, alert_id, 1, a, b).texts == ["Évacuation vers le gymnase."]
    wait_until(
        lambda: len([i for i in k.feed_items(camille.home) if i["class_name"] == "CE1 A"]) == 200,
        timeout=120, interval=0.5, what="the 200 posts on B", logs=[a, b],
    )  # fmt: skip
    kinds = [kind for kind, _ in applied_in_order(a_to_b, since)]
    assert kinds.count("alert") == 1 and kinds.count("post") == 200, kinds
    # A sent the alert ahead of the backlog: only the batch it was already trying when
    # the link failed (sent again as it was) went before; B applied the alert, then the
    # other posts
    held = next(r for r in a_to_b.requests[since:] if r.action == "blackholed")
    retried = [r for r in a_to_b.requests[since:] if r.path == held.path and r.status == 200]
    assert retried, [r.describe() for r in a_to_b.requests[since:]]
    before = len(carried(held))
    assert 1 <= before <= 50 and {kind for kind, _ in carried(held)} == {"post"}
    assert kinds[:before] == ["post"] * before and kinds[before] == "alert", kinds
    # and B pulled nothing meanwhile: it applied what it got in the order it came
    assert b.log_text().count("/np/streams/") == pulls
    shown = [s.text for s in reversed(k.read_feed(camille.home)) if s.class_name == "CE1 A"]
    assert shown == posted


@pytest.mark.transport
def test_a_home_node_killed_before_the_alert_gets_it_after_its_restart(
    make_cluster: Callable[..., Cluster],
) -> None:
    cluster = make_cluster(("a", "b"), config=FAST_RETRIES)
    a, b = cluster
    admins = set_up_schools(cluster, ("a", "b"))
    ce1 = teacher_class(admins["a"], "CE1 A")
    camille = family_at_home(admins["b"], "Camille Martin", "+33639980001", "Léa")
    joined(camille, ce1, "Noé")
    school = al.set_up_school_group(admins["a"])

    b.kill()  # SIGKILL: B crashes
    alert_id = al.send_alert(school, "shelter", "Mise à l'abri : restez à l'intérieur.")
    assert al.reach(school, alert_id)["acknowledged"] == 0
    b.start()  # on the same data

    shown = al.wait_alert(camille.home, alert_id, 1, a, b)
    assert shown.texts == ["Mise à l'abri : restez à l'intérieur."] and shown.school == a.school
    al.acknowledge(camille.home, alert_id)
    dashboard = wait_acknowledged(school, alert_id, 1, b)
    assert al.guardian_states(dashboard)["Camille Martin"] == "acknowledged"
    assert dashboard["children"] == dashboard["children_reached"] == 1, dashboard
    assert [x["id"] for x in al.my_alerts(camille.home)] == [alert_id]  # once
