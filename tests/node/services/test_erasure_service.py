"""Issue 8: a guardian deletes their own account; what goes, what stays, who may."""

from __future__ import annotations

import pytest

from node import refclient_groups as rc
from node.e2e import messages as m
from node.e2e.encoding import b64url_encode
from node.errors import Invalid, PermissionDenied
from node.services import audit, chat_moderation, directory, erasure, posts
from node.storage import accounts as account_store
from node.storage.db import Storage
from tests.chat_factories import accept, open_conversation, page, read, say, set_chat
from tests.feed_factories import ClassFeed, make_class_feed
from tests.retention_factories import account_exists, audit_rows, message_row, upload


@pytest.fixture
def cf(storage: Storage, ctx) -> ClassFeed:  # type: ignore[no-untyped-def]
    return make_class_feed(storage, ctx, families=2)


def test_only_a_guardian_typing_the_word_erases_their_account(cf: ClassFeed) -> None:
    parent = cf.guardians[0]
    for staff in (cf.teacher.actor, cf.school.admin):
        with pytest.raises(PermissionDenied):
            cf.storage.call(erasure.request_erasure, cf.ctx, staff, "DELETE")
    for typed in ("", "yes", None, 1, "DELETE ME"):
        with pytest.raises(Invalid) as refused:
            cf.storage.call(erasure.request_erasure, cf.ctx, parent.actor, typed)
        assert refused.value.field == "confirm"
    assert account_exists(cf, parent.actor.account_id)


def test_an_erasure_takes_the_account_sessions_words_and_files_at_once(cf: ClassFeed) -> None:
    parent, other = cf.guardians
    post = cf.post({"text": "Kermesse", "attachments": []})
    mine = cf.reply(parent, post, "comment", {"text": "Je viens"})
    theirs = cf.reply(other, post, "comment", {"text": "Moi aussi"})
    blob = upload(cf, parent)
    path = posts.blob_store(cf.ctx).path(blob)

    erased = cf.storage.call(erasure.request_erasure, cf.ctx, parent.actor, " supprimer ")

    assert erased.messages == 1
    assert not account_exists(cf, parent.actor.account_id)
    sessions = account_store.Session
    count = cf.storage.call(
        lambda: sessions.select().where(sessions.account == parent.actor.account_id).count()
    )
    assert count == 0
    gone = message_row(cf, mine)
    assert gone.deleted_at is not None and gone.ct is None and gone.sig is None
    assert message_row(cf, theirs).ct is not None and message_row(cf, post).ct is not None
    assert not path.exists()
    # the teacher's roster no longer shows them; their name and number are gone from it
    roster = cf.storage.call(directory.class_roster, cf.ctx, cf.teacher.actor, cf.class_id)
    names = [g.display_name for child in roster for g in child.guardians]
    assert "Parent 0" not in names and "Parent 1" in names
    last = audit_rows(cf)[-1]
    assert last.action == "erasure_requested"
    assert last.actor == last.target == audit.pseudonym(cf.ctx, parent.actor.account_id)
    # the others' feed still reads, with the erased comment left out
    replies = cf.read(other)[0]["replies"]
    assert [r["text"] for r in replies] == ["Moi aussi"]


def test_chat_messages_become_tombstones_and_reports_go(cf: ClassFeed) -> None:
    reporter, author = cf.guardians
    set_chat(cf, parent_chat="open")
    accept(cf, reporter, author)
    group = open_conversation(cf, author, "group", [author.me, reporter.me])
    say(cf, author, group, "bonjour")
    bad = say(cf, author, group, "message insultant").message
    state, keys = cf.keys_of(reporter)
    item = next(i for i in page(cf, reporter, group)["items"] if i["id"] == bad)
    key = m.open_message_key(
        state.group, bad, item["key"], reporter.me, reporter.keys.enc_sk, reporter.keys.enc_pk
    )
    report = rc.encrypt(
        reporter.keys, reporter.me, state, keys, "report",
        {"key": b64url_encode(key), "note": "insulte"}, parent=bad,
        to=sorted([cf.teacher.me, reporter.me]),
    )  # fmt: skip
    cf.storage.call(
        chat_moderation.report, cf.ctx, reporter.actor, cf.class_id, group, bad,
        report["message"], keys=report["keys"],
    )  # fmt: skip
    teacher_reports = (chat_moderation.reports, cf.ctx, cf.teacher.actor, cf.class_id)
    assert len(cf.storage.call(*teacher_reports)) == 1

    cf.storage.call(erasure.request_erasure, cf.ctx, reporter.actor, "DELETE")
    assert cf.storage.call(*teacher_reports) == []  # the report went with its author
    assert read(cf, author, group) == ["bonjour", "message insultant"]

    cf.storage.call(erasure.request_erasure, cf.ctx, author.actor, "DELETE")
    assert message_row(cf, bad).ct is None and message_row(cf, bad).deleted_at is not None
    assert message_row(cf, group).ct is not None  # the group's opening stays: nothing hangs loose
