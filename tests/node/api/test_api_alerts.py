"""Emergency alerts over the JSON API: set up, send, read, acknowledge, reach; clear refusals."""

from __future__ import annotations

import pytest
from quart import Quart

from node import refclient_groups as rc
from node.storage.db import Storage
from tests.alert_factories import AlertSchool, make_alert_school
from tests.factories import client_account
from tests.feed_factories import make_class_feed
from tests.node.api.test_api_feed import as_, send

ADMIN = "admin@school.test"
TEACHER = "dubois@school.test"
PARENT_0 = "+33639980000"


async def test_set_up_send_read_acknowledge_and_see_reach(
    app: Quart, storage: Storage, ctx
) -> None:
    make_class_feed(storage, ctx, families=2)
    admin = await as_(app, ADMIN)
    keys = client_account(ADMIN).keys
    view = await (await admin.get("/api/v1/school-group")).get_json()
    assert view["group_id"] is None and len(view["add"]) == 2
    log, envelopes, epoch_key = rc.setup_school_group(keys, view["me"])
    created = await send(
        admin, "POST", "/api/v1/school-group", {"entries": log, "envelopes": envelopes}
    )
    assert created.status_code == 201, await created.get_data()
    view = await (await admin.get("/api/v1/school-group")).get_json()
    new, sealed = rc.add_guardians(keys, view["entries"], view["add"], epoch_key)
    added = await send(
        admin, "POST", "/api/v1/school-group/entries", {"entries": new, "envelopes": sealed}
    )
    assert added.status_code == 200 and (await added.get_json())["head_seq"] == 4

    view = await (await admin.get("/api/v1/school-group")).get_json()
    state, epoch_keys = rc.open_epoch_keys(view, keys)
    made = rc.encrypt_alert(
        keys, view["me"], state, epoch_keys, "shelter", "Restez à l'abri.", False
    )
    body = {"message": made["message"], "template": "shelter", "drill": False}
    response = await send(admin, "POST", "/api/v1/alerts", body)
    assert response.status_code == 201, await response.get_data()
    sent = await response.get_json()
    assert sent["state"] == "active" and sent["recipients"] == 2

    parent = await as_(app, PARENT_0)
    listed = (await (await parent.get("/api/v1/alerts")).get_json())["alerts"]
    assert [a["id"] for a in listed] == [sent["alert"]] and listed[0]["acknowledged_at"] is None
    alert = await (await parent.get(f"/api/v1/alerts/{sent['alert']}")).get_json()
    pview = await (await parent.get("/api/v1/school-group")).get_json()
    pstate, pkeys = rc.open_epoch_keys(pview, client_account(PARENT_0).keys)
    assert rc.decrypt_alert(alert["messages"][0], pstate, pkeys)["text"] == "Restez à l'abri."
    ack = await send(parent, "POST", f"/api/v1/alerts/{sent['alert']}/ack")
    assert ack.status_code == 200

    reach = await (await admin.get(f"/api/v1/alerts/{sent['alert']}/reach")).get_json()
    assert (reach["guardians"], reach["acknowledged"], reach["children_reached"]) == (2, 1, 1)
    states = sorted(g["state"] for c in reach["classes"][0]["children"] for g in c["guardians"])
    # the other parent has no device: an SMS at once (sent by now, or about to be)
    assert states[0] == "acknowledged" and states[1] in ("texted", "waiting")
    assert "+33" not in str(reach)
    assert (await parent.get(f"/api/v1/alerts/{sent['alert']}/reach")).status_code == 403
    assert reach["timing"]["recipients"] == 2 and reach["timing"]["acknowledged"] == 1
    families = (await (await admin.get("/api/v1/alerts/worklist")).get_json())["families"]
    assert {f["reach"] for f in families} == {"sms"}  # nobody turned notifications on
    assert len(families) == 2 and families[0]["guardians"][0]["problem"] == "no_device"
    assert (await parent.get("/api/v1/alerts/worklist")).status_code == 403


@pytest.fixture
def school(storage: Storage, ctx) -> AlertSchool:  # type: ignore[no-untyped-def]
    return make_alert_school(storage, ctx, families=1)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"template": "lockdown", "drill": False}, 400, "message"),
        ({"message": {}, "template": "lockdown", "drill": False}, 400, "message"),
        ({"message": {}, "template": "lockdown", "drill": "no"}, 400, "drill"),
        ({"message": {}, "template": "x" * 40, "drill": False}, 400, "template"),
    ],
)
async def test_bad_alerts_get_a_clear_error(
    app: Quart, school: AlertSchool, body, status, field
) -> None:
    admin = await as_(app, ADMIN)
    response = await send(admin, "POST", "/api/v1/alerts", body)
    assert response.status_code == status
    error = (await response.get_json())["error"]
    assert error["field"] == field and error["message"]
    assert (await (await admin.get("/api/v1/alerts")).get_json())["alerts"] == []


async def test_a_teacher_cannot_send_and_a_parent_cannot_see_another_alert(
    app: Quart, school
) -> None:
    teacher = await as_(app, TEACHER)
    message = school.alert_message()
    response = await send(
        teacher,
        "POST",
        "/api/v1/alerts",
        {"message": message, "template": "lockdown", "drill": False},
    )
    assert response.status_code == 403
    parent = await as_(app, PARENT_0)
    assert (await parent.get("/api/v1/alerts/AAAAAAAAAAAAAAAAAAAAAA")).status_code == 404
    assert (
        await send(
            parent,
            "PUT",
            "/api/v1/alerts/policy",
            {"sms_delay_seconds": 60, "sms_with_text": False, "two_person": False},
        )
    ).status_code == 403
