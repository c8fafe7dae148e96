"""Issue 8: a guardian deletes their own account; what goes, what stays, who may."""

from __future__ import annotations

import pytest

from node.errors import Invalid, PermissionDenied
from node.services import audit, directory, erasure, posts
from node.storage import accounts as account_store
from node.storage.db import Storage
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
