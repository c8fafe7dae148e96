"""A guardian downloads all their data, decrypted in Chromium, and Python opens the zip.

The school is seeded through the real services before the node starts, the
encrypted content written with the Python reference client (what the
teacher's and the families' browsers would have sent): a class post with a
file, Camille's comment on it and her absence note; a post for another
family only, and another class with a post of its own. Camille logs in
(her keys unlocked into the browser), follows "Download all my data" from
her account page and saves the zip; the test finds the decrypted post, the
comment, the note's reason and the file's bytes, and nothing of the other
family or the other class.

``CARNET_TEST_SCREENSHOTS=1`` saves screenshots (desktop and a 390 px phone)
under ``tests/browser/screenshots/`` (not committed).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ServedNode, new_page, seeded_node

pytestmark = pytest.mark.browser

PASSPHRASE = "chalk river marble lantern"
CAMILLE = "+33639980001"  # Léa's guardian: the one who exports
KARIM = "+33639980003"  # Tom's guardian
FILE = b"%PDF-1.4\n% Carnet export test: the school trip's list\n" + bytes(range(256)) * 300
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def seed(data_dir: Path) -> dict[str, Any]:
    """The school, its keys and messages; run in its own process (one database per process)."""
    from node import refclient_groups as rc
    from node.cli import _context
    from node.e2e import attachments as att
    from node.e2e.encoding import b64url_encode
    from node.refclient import new_account
    from node.services import (
        absences,
        accounts,
        alerts,
        blobs,
        chat_views,
        conversations,
        directory,
        groups,
        onboarding,
        posts,
        school_group,
    )
    from node.services.sms_outbox import record_result
    from node.storage import onboarding as sms_store

    ctx, storage = _context(data_dir)
    iterations = ctx.config.kdf_iterations

    def staff(admin: Any, role: str, name: str, email: str) -> Any:
        _, token = accounts.create_staff(ctx, admin, role, name, email)
        client = new_account(email, PASSPHRASE, iterations)
        grant = accounts.complete_setup(ctx, token, client.credentials, "seed")
        accounts.logout(ctx, grant.actor)
        return grant.actor, client.keys

    def join(phone: str, code: str) -> Any:
        attempt = onboarding.start(ctx, phone, code, "127.0.0.1", "en")
        texts = sms_store.select_queued_sms_to(phone)
        sms_code = re.search(r"\b(\d{6})\b", texts[-1].body or "")
        assert sms_code is not None
        for text in texts:
            record_result(ctx, text.id, "sent", "seed", None, False)
        verified = onboarding.verify_sms(ctx, attempt.attempt_id, sms_code[1], "127.0.0.1")
        client = new_account(verified.login, PASSPHRASE, iterations)
        grant = onboarding.complete_new(ctx, attempt.attempt_id, client.credentials, "seed")
        accounts.logout(ctx, grant.actor)
        return grant.actor, client.keys

    def open_class(teacher: Any, keys: Any, class_id: int) -> tuple[str, Any, Any]:
        """The teacher's first visit: the class keys, every guardian approved."""
        me = groups.member_id(ctx, teacher.account_id)
        log, envelopes, epoch_key = rc.setup_group(keys, me)
        groups.create_group(ctx, teacher, class_id, log, envelopes)
        view = groups.group_view(ctx, teacher, class_id)
        new, envelopes = rc.approve(
            keys, view.entries, [c.__dict__ for c in view.to_approve], epoch_key
        )
        if new:  # a class without families yet has nobody to approve
            groups.append_entries(ctx, teacher, class_id, new, envelopes)
        return me, view, epoch_key

    def keys_of(actor: Any, keys: Any, class_id: int) -> tuple[str, Any, Any]:
        view = groups.group_view(ctx, actor, class_id)
        state, epoch_keys = rc.open_epoch_keys(
            {"entries": view.entries, "envelopes": view.envelopes, "me": view.me}, keys
        )
        return view.me, state, epoch_keys

    def post(teacher: Any, keys: Any, class_id: int, body: dict[str, Any], **kw: Any) -> str:
        me, state, epoch_keys = keys_of(teacher, keys, class_id)
        to = kw.pop("to", None)
        request = rc.encrypt(keys, me, state, epoch_keys, "post", body, to=to)
        done = posts.create_post(
            ctx, teacher, class_id, request["message"], keys=request.get("keys"), **kw
        )
        return str(done.message)

    def upload(teacher: Any, class_id: int) -> dict[str, Any]:
        """An encrypted file, as files.js encryptAndUpload sends it."""
        key, prefix = att.new_file_key()
        ct = att.encrypt_file(key, prefix, FILE)
        info = blobs.start_upload(ctx, teacher, class_id, len(ct))
        blobs.append_part(ctx, teacher, info.id, 0, ct)
        sha = att.sha256_b64(ct)
        blobs.complete_upload(ctx, teacher, info.id, sha)
        return {
            "blob": info.id, "key": b64url_encode(key), "prefix": b64url_encode(prefix),
            "size": len(FILE), "ct_sha256": sha, "type": "application/pdf",
            "name": "Liste sortie.pdf", "kind": "document", "thumb": None,
        }  # fmt: skip

    def as_json(value: Any) -> Any:
        return json.loads(json.dumps(dataclasses.asdict(value), default=str))

    def family_thread(teacher: Any, keys: Any, class_id: int, child: int, title: str) -> str:
        """The teacher opens a thread with the child's guardians, as chat.js does."""
        me, state, epoch_keys = keys_of(teacher, keys, class_id)
        to = chat_views.overview(ctx, teacher, class_id).family_members[child]
        opening = rc.encrypt(
            keys, me, state, epoch_keys, "conversation", {"title": title}, to=sorted(to)
        )
        said = conversations.open_conversation(
            ctx, teacher, class_id, "family", opening["message"], keys=opening["keys"], child=child
        )
        return str(said.conversation)

    def say(actor: Any, keys: Any, class_id: int, conversation: str, text: str) -> None:
        me, state, epoch_keys = keys_of(actor, keys, class_id)
        to = chat_views.conversation(ctx, actor, class_id, conversation).reply_to
        request = rc.encrypt(
            keys, me, state, epoch_keys, "chat", {"text": text}, parent=conversation, to=to
        )
        conversations.say(
            ctx, actor, class_id, conversation, request["message"], keys=request["keys"]
        )

    def alert(admin: Any, keys: Any) -> None:
        """The admin's first alert: the school group with every guardian, then a lockdown."""
        me = groups.member_id(ctx, admin.account_id)
        log, envelopes, epoch_key = rc.setup_school_group(keys, me)
        school_group.create(ctx, admin, log, envelopes)
        view = as_json(school_group.view(ctx, admin))
        new, envelopes = rc.add_guardians(keys, view["entries"], view["add"], epoch_key)
        school_group.append(ctx, admin, new, envelopes)
        state, epoch_keys = rc.open_epoch_keys(as_json(school_group.view(ctx, admin)), keys)
        made = rc.encrypt_alert(
            keys, me, state, epoch_keys, "lockdown", "Restez à l'intérieur.", True, None
        )
        alerts.send(ctx, admin, made["message"], "lockdown", True)

    def school() -> dict[str, Any]:
        admin, admin_keys = staff(None, "admin", "Claire Directrice", "direction2@ecole.test")
        teacher, teacher_keys = staff(admin, "teacher", "M. Dubois", "dubois@ecole.test")
        ce1 = directory.create_class(ctx, teacher, "CE1 A")
        cm2 = directory.create_class(ctx, teacher, "CM2 B")  # not a class of Camille's
        lea = directory.add_child(ctx, teacher, ce1.id, "Léa", "Martin")
        tom = directory.add_child(ctx, teacher, ce1.id, "Tom", "Bernard")
        directory.add_child(ctx, teacher, cm2.id, "Hugo", "Moreau")
        karim, _ = join(
            KARIM, directory.register_guardian(ctx, teacher, tom.id, "Karim Bernard", KARIM).code
        )
        _, _, first_key = open_class(teacher, teacher_keys, ce1.id)
        # a post of last school year, then a new year's key with no link back (a cut):
        # Camille, approved after it, cannot decrypt the old post, which the export must say
        old = post(teacher, teacher_keys, ce1.id, {"text": "Bonnes vacances !", "attachments": []})
        view = groups.group_view(ctx, teacher, ce1.id)
        new, envelopes, year_key = rc.remove(teacher_keys, view.entries, [], first_key, cut=True)
        groups.append_entries(ctx, teacher, ce1.id, new, envelopes)
        camille, camille_keys = join(
            CAMILLE,
            directory.register_guardian(ctx, teacher, lea.id, "Camille Martin", CAMILLE).code,
        )
        view = groups.group_view(ctx, teacher, ce1.id)
        new, envelopes = rc.approve(
            teacher_keys, view.entries, [c.__dict__ for c in view.to_approve], year_key
        )
        groups.append_entries(ctx, teacher, ce1.id, new, envelopes)
        open_class(teacher, teacher_keys, cm2.id)
        descriptor = upload(teacher, ce1.id)
        trip = post(
            teacher, teacher_keys, ce1.id,
            {"text": "Sortie au musée jeudi : la liste est jointe.", "attachments": [descriptor]},
            blobs=[descriptor["blob"]],
        )  # fmt: skip
        view = groups.group_view(ctx, teacher, ce1.id)
        tom_family = sorted(
            {m for c in view.children if c.id == tom.id for m in c.members} | {view.me}
        )
        post(
            teacher, teacher_keys, ce1.id, {"text": "Tom a perdu une dent.", "attachments": []},
            children=[tom.id], to=tom_family,
        )  # fmt: skip
        post(teacher, teacher_keys, cm2.id, {"text": "Piscine du CM2 lundi.", "attachments": []})
        me, state, epoch_keys = keys_of(camille, camille_keys, ce1.id)
        comment = rc.encrypt(
            camille_keys, me, state, epoch_keys, "comment", {"text": "Merci, c'est noté !"},
            parent=trip,
        )  # fmt: skip
        posts.add_reply(ctx, camille, ce1.id, trip, comment["message"], keys=comment.get("keys"))
        lea_family = sorted(
            {m for c in view.children if c.id == lea.id for m in c.members} | {view.me}
        )
        day = absences.today(ctx).isoformat()
        note = rc.encrypt(
            camille_keys, me, state, epoch_keys, "absence",
            {"kind": "absent", "first_day": day, "last_day": day, "arrival": None,
             "text": "Rendez-vous chez l'orthophoniste"},
            to=lea_family,
        )  # fmt: skip
        absences.report(
            ctx, camille, ce1.id, note["message"], keys=note["keys"], child=lea.id,
            kind="absent", first_day=day, last_day=None,
        )  # fmt: skip
        ours = family_thread(teacher, teacher_keys, ce1.id, lea.id, "Suivi de Léa")
        say(camille, camille_keys, ce1.id, ours, "D'accord, à jeudi.")
        family_thread(teacher, teacher_keys, ce1.id, tom.id, "Suivi de Tom")
        alert(admin, admin_keys)
        assert karim is not None
        return {"class_id": ce1.id, "trip": trip, "old": old}

    try:
        return storage.call(school)
    finally:
        storage.close()


@pytest.fixture
def school(tmp_path: Path) -> Iterator[tuple[ServedNode, dict[str, Any]]]:
    with seeded_node(tmp_path, "tests.browser.test_export_browser") as served:
        yield served


def shot(page: Page, name: str) -> None:
    if os.environ.get("CARNET_TEST_SCREENSHOTS"):
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(page: Page, node: ServedNode) -> None:
    page.goto(f"{node.url}/login")
    page.fill("#login", CAMILLE)
    page.fill("#passphrase", PASSPHRASE)
    page.click("#login-submit")
    page.wait_for_url(f"{node.url}/home")


def test_a_guardian_downloads_exactly_their_data_decrypted(
    browser: Browser, school: tuple[ServedNode, dict[str, Any]], tmp_path: Path
) -> None:
    node, seeded = school
    page = new_page(browser, accept_downloads=True, **DESKTOP)
    log_in(page, node)
    page.goto(f"{node.url}/account")
    shot(page, "export-account-desktop")
    page.get_by_role("link", name="Download all my data").click()
    page.wait_for_url(f"{node.url}/me/export")
    shot(page, "export-desktop")
    with page.expect_download(timeout=30_000) as info:
        page.get_by_role("button", name="Download all my data").click()
    download = info.value
    assert re.fullmatch(r"carnet-export-\d{4}-\d{2}-\d{2}\.zip", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    expect(page.locator("#export-status")).to_contain_text("One item could not be decrypted")
    expect(page.get_by_role("link", name="Save the file again")).to_be_visible()
    shot(page, "export-done-desktop")

    with zipfile.ZipFile(saved) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        data = json.loads(archive.read("data.json"))
        readme = archive.read("README.txt").decode()
        files = [n for n in names if n.startswith("files/")]
        assert len(files) == 1 and files[0].endswith("Liste sortie.pdf")
        assert archive.read(files[0]) == FILE
    assert sorted(names) == sorted(["data.json", "README.txt", files[0]])
    assert "Your data from Carnet" in readme and "Camille Martin" in readme

    assert data["profile"]["display_name"] == "Camille Martin"
    assert data["profile"]["phone"] == CAMILLE
    assert [c["first_name"] for c in data["children"]] == ["Léa"]
    assert [c["name"] for c in data["classes"]] == ["CE1 A"]
    trip, last_year = data["posts"]
    assert last_year["id"] == seeded["old"] and last_year["text"] is None
    assert trip["id"] == seeded["trip"] and trip["text"].startswith("Sortie au musée jeudi")
    assert trip["attachments"] == [
        {"name": "Liste sortie.pdf", "type": "application/pdf", "size": len(FILE), "file": files[0]}
    ]
    assert [c["text"] for c in trip["comments"]] == ["Merci, c'est noté !"]
    [note] = data["absence_notes"]
    assert note["reason"] == "Rendez-vous chez l'orthophoniste" and note["child"] == "Léa"
    [thread] = data["conversations"]
    assert thread["title"] == "Suivi de Léa" and thread["kind"] == "family"
    assert [(m["author"], m["text"]) for m in thread["messages"]] == [
        ("Camille Martin", "D'accord, à jeudi.")
    ]
    [lockdown] = data["alerts"]
    assert lockdown["template"] == "lockdown" and lockdown["drill"] is True
    assert [m["text"] for m in lockdown["messages"]] == ["Restez à l'intérieur."]
    assert data["not_decrypted"] == [
        {
            "what": "post", "id": seeded["old"], "class": "CE1 A",
            "date": last_year["created_at"],
            "reason": "Sent before you joined: it was not encrypted for you.",
        }
    ]  # fmt: skip
    everything = json.dumps(data, ensure_ascii=False)
    for foreign in (
        "Tom a perdu une dent",
        "Piscine du CM2",
        "Hugo",
        "CM2 B",
        "Suivi de Tom",
        KARIM,
    ):
        assert foreign not in everything  # nothing of another family or another class
    assert '"key"' not in everything  # file keys stay out of the export
    assert not page.js_errors, page.js_errors  # type: ignore[attr-defined]

    # on a phone, in French: the page and the README in the person's language
    phone = new_page(browser, locale="fr-FR", accept_downloads=True, **PHONE)
    log_in(phone, node)
    phone.goto(f"{node.url}/me/export")
    shot(phone, "export-phone-fr")
    with phone.expect_download(timeout=30_000) as info:
        phone.get_by_role("button", name="Télécharger toutes mes données").click()
    expect(phone.locator("#export-status")).to_contain_text("Un élément n'a pas pu être déchiffré")
    shot(phone, "export-done-phone-fr")
    with zipfile.ZipFile(info.value.path()) as archive:
        assert archive.read("README.txt").decode().startswith("Vos données Carnet")


if (
    __name__ == "__main__"
):  # the seeding, in its own process: python -m tests.browser.test_export_browser DIR
    print(json.dumps(seed(Path(sys.argv[1]))))
