"""The encrypted class feed through the services: who sees, decrypts, replies, and what is refused."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest

from node import refclient_groups as rc
from node.e2e.groups import EpochKeyError
from node.e2e.messages import MessageError
from node.e2e.vault import open_vault_with_recovery_key
from node.errors import Conflict, Invalid, NotFound, PermissionDenied, RateLimited
from node.refclient import new_account, reseal_account
from node.services import accounts, directory, feed, groups, onboarding, posts
from node.storage.db import Storage
from tests.factories import (
    client_account,
    invite,
    make_child,
    make_class,
    make_guardian,
    make_staff,
    sms_code,
)
from tests.feed_factories import ClassFeed, Person, as_json, make_class_feed


@pytest.fixture
def cf(storage: Storage, ctx) -> ClassFeed:  # type: ignore[no-untyped-def]
    return make_class_feed(storage, ctx, families=3)


def test_a_class_post_reaches_every_family_decrypted(cf: ClassFeed) -> None:
    post = cf.post({"text": "Sortie jeudi", "attachments": []})
    for person in cf.guardians + [cf.teacher]:
        items = cf.read(person)
        assert [i["id"] for i in items] == [post]
        assert items[0]["body"]["text"] == "Sortie jeudi"


def test_a_post_for_one_child_reaches_only_that_family_and_is_labelled(cf: ClassFeed) -> None:
    target = cf.guardians[1]
    post = cf.post({"text": "Une dent perdue", "attachments": []}, children=[target.child_id])
    assert [i["id"] for i in cf.read(target)] == [post]
    assert cf.read(target)[0]["children"] == ["Enfant1"]
    assert cf.read(cf.guardians[0]) == [] and cf.read(cf.guardians[2]) == []
    assert cf.read(cf.teacher)[0]["body"]["text"] == "Une dent perdue"


def test_whole_class_posts_are_labelled_with_the_readers_children(cf: ClassFeed) -> None:
    cf.post({"text": "Bonjour", "attachments": []})
    item = cf.feed_of(cf.guardians[0])["items"][0]
    assert item["class_name"] == "CE1 A" and item["children"] == ["Léa"] and not item["targeted"]


def test_comments_and_reactions_decrypt_for_the_class(cf: ClassFeed) -> None:
    post = cf.post({"text": "Photos", "attachments": []})
    cf.reply(cf.guardians[0], post, "comment", {"text": "Merci !"})
    cf.reply(cf.guardians[1], post, "reaction", {"emoji": "👍"})
    cf.reply(cf.guardians[1], post, "reaction", {"emoji": "❤️"})  # replaces the first
    replies = cf.read(cf.guardians[2])[0]["replies"]
    assert replies == [{"text": "Merci !"}, {"emoji": "❤️"}]


def test_comments_switched_off_are_refused_and_only_the_teacher_switches(cf: ClassFeed) -> None:
    post = cf.post({"text": "x", "attachments": []}, comments_enabled=False)
    with pytest.raises(PermissionDenied):
        cf.reply(cf.guardians[0], post, "comment", {"text": "non"})
    cf.reply(cf.guardians[0], post, "reaction", {"emoji": "👍"})  # reactions stay possible
    with pytest.raises(PermissionDenied):
        cf.storage.call(posts.set_comments, cf.ctx, cf.guardians[0].actor, cf.class_id, True, post)
    cf.storage.call(posts.set_comments, cf.ctx, cf.teacher.actor, cf.class_id, True, post)
    cf.reply(cf.guardians[0], post, "comment", {"text": "oui"})
    cf.storage.call(posts.set_comments, cf.ctx, cf.teacher.actor, cf.class_id, False)
    with pytest.raises(PermissionDenied):
        cf.reply(cf.guardians[0], post, "comment", {"text": "classe fermée"})


def test_comment_deletion_by_author_and_teacher_not_by_others(cf: ClassFeed) -> None:
    post = cf.post({"text": "x", "attachments": []})
    c1 = cf.reply(cf.guardians[0], post, "comment", {"text": "un"})
    c2 = cf.reply(cf.guardians[0], post, "comment", {"text": "deux"})
    with pytest.raises(PermissionDenied):
        cf.storage.call(posts.delete_message, cf.ctx, cf.guardians[1].actor, cf.class_id, c1)
    cf.storage.call(posts.delete_message, cf.ctx, cf.guardians[0].actor, cf.class_id, c1)
    cf.storage.call(posts.delete_message, cf.ctx, cf.teacher.actor, cf.class_id, c2)
    assert cf.read(cf.guardians[1])[0]["replies"] == []


def test_only_the_teacher_posts(cf: ClassFeed) -> None:
    person = cf.guardians[0]
    state, keys = cf.keys_of(person)
    request = rc.encrypt(
        person.keys, person.me, state, keys, "post", {"text": "spam", "attachments": []}
    )
    with pytest.raises(PermissionDenied):
        cf.storage.call(posts.create_post, cf.ctx, person.actor, cf.class_id, request["message"])


def test_a_message_signed_for_someone_else_is_refused(cf: ClassFeed) -> None:
    post = cf.post({"text": "x", "attachments": []})
    victim, forger = cf.guardians[0], cf.guardians[1]
    state, keys = cf.keys_of(forger)
    request = rc.encrypt(
        forger.keys, victim.me, state, keys, "comment", {"text": "I am Parent 0"}, parent=post
    )
    with pytest.raises(Invalid):
        cf.storage.call(
            posts.add_reply, cf.ctx, forger.actor, cf.class_id, post, request["message"]
        )


def test_a_stale_epoch_is_refused_after_a_rotation(cf: ClassFeed) -> None:
    state, keys = cf.keys_of(cf.teacher)
    stale = rc.encrypt(
        cf.teacher.keys, cf.teacher.me, state, keys, "post", {"text": "old", "attachments": []}
    )
    cf.storage.call(directory.remove_guardian, cf.ctx, cf.teacher.actor, _invitation_of(cf, 2))
    cf.remove_pending()
    with pytest.raises(Conflict):
        cf.storage.call(posts.create_post, cf.ctx, cf.teacher.actor, cf.class_id, stale["message"])


def _invitation_of(cf: ClassFeed, index: int) -> int:
    roster = cf.storage.call(directory.class_roster, cf.ctx, cf.teacher.actor, cf.class_id)
    name = f"Parent {index}"
    return next(g.invitation_id for c in roster for g in c.guardians if g.display_name == name)


def test_a_removed_guardian_reads_nothing_new_even_with_every_ciphertext(cf: ClassFeed) -> None:
    before = cf.post({"text": "avant", "attachments": []})
    removed = cf.guardians[2]
    old_state, old_keys = cf.keys_of(removed)
    cf.storage.call(directory.remove_guardian, cf.ctx, cf.teacher.actor, _invitation_of(cf, 2))
    # the node stops serving at once, before the teacher's browser rotates
    with pytest.raises(NotFound):
        cf.storage.call(groups.group_view, cf.ctx, removed.actor, cf.class_id)
    with pytest.raises(Conflict):  # no new post until the rotation is done
        cf.post({"text": "trop tôt", "attachments": []})
    cf.remove_pending()
    after = cf.post({"text": "après", "attachments": []})
    # hand the removed guardian everything the node stores
    everything = cf.feed_of(cf.teacher)["items"]
    full_view = cf.view(cf.teacher)
    state = rc.g.verify_log(full_view["entries"])
    readable = {}
    for item in everything:
        try:
            readable[item["id"]] = rc.decrypt(item, state, old_keys, removed.keys, removed.me)
        except (EpochKeyError, MessageError):
            readable[item["id"]] = None
    assert readable[before] == {"text": "avant", "attachments": []}
    assert readable[after] is None
    # the new epoch key is sealed to everyone but them
    assert removed.me not in state.epochs[-1].to
    assert {i["id"] for i in cf.read(cf.guardians[0])} == {before, after}
    assert old_state.current_epoch is not None and old_state.current_epoch.epoch == 0


def test_a_guardian_approved_mid_year_reads_back_to_the_year_start_not_before(
    cf: ClassFeed,
) -> None:
    last_year = cf.post({"text": "année dernière", "attachments": []})
    cf.storage.call(directory.remove_guardian, cf.ctx, cf.teacher.actor, _invitation_of(cf, 2))
    cf.remove_pending(cut=True)  # the new school year starts: a cut
    this_year = cf.post({"text": "rentrée", "attachments": []})
    # a new family joins mid-year
    child = make_child(cf.storage, cf.ctx, cf.teacher.actor, cf.class_id, "Nina")
    slip = invite(
        cf.storage, cf.ctx, cf.teacher.actor, child.id, phone="+33639981234", name="Nouveau"
    )
    actor = make_guardian(cf.storage, cf.ctx, slip.code, "+33639981234")
    newcomer = Person(
        actor,
        client_account("+33639981234").keys,
        groups.member_id(cf.ctx, actor.account_id),
        child.id,
    )
    assert cf.view(newcomer)["status"] == "waiting"
    with pytest.raises(PermissionDenied):
        cf.storage.call(groups.require_member, cf.ctx, actor, cf.class_id)
    cf.approve_all()
    state, keys = cf.keys_of(newcomer)
    assert sorted(keys) == [1]
    items = {i["id"]: i for i in cf.feed_of(newcomer)["items"]}
    assert (
        rc.decrypt(items[this_year], state, keys, newcomer.keys, newcomer.me)["text"] == "rentrée"
    )
    with pytest.raises(EpochKeyError):
        rc.decrypt(items[last_year], state, keys, newcomer.keys, newcomer.me)


def test_read_receipts_grouped_by_child_and_reminders(cf: ClassFeed) -> None:
    post = cf.post({"text": "À lire", "attachments": []})
    cf.storage.call(feed.mark_read, cf.ctx, cf.guardians[0].actor, cf.class_id, post)
    cf.storage.call(feed.mark_read, cf.ctx, cf.guardians[0].actor, cf.class_id, post)  # idempotent
    receipts = as_json(cf.storage.call(feed.receipts, cf.ctx, cf.teacher.actor, cf.class_id, post))
    assert (receipts["read"], receipts["total"]) == (1, 3)
    by_child = {
        c["child"]: [(g["name"], g["read_at"] is not None) for g in c["guardians"]]
        for c in receipts["children"]
    }
    assert by_child["Léa Martin"] == [("Parent 0", True)]
    assert by_child["Enfant1 Martin"] == [("Parent 1", False)]
    with pytest.raises(PermissionDenied):
        cf.storage.call(feed.receipts, cf.ctx, cf.guardians[0].actor, cf.class_id, post)
    reminded = cf.storage.call(feed.remind_unread, cf.ctx, cf.teacher.actor, cf.class_id, post)
    assert reminded == sorted([cf.guardians[1].actor.account_id, cf.guardians[2].actor.account_id])
    with pytest.raises(RateLimited):
        cf.storage.call(feed.remind_unread, cf.ctx, cf.teacher.actor, cf.class_id, post)


def test_edit_bumps_the_version_and_delete_leaves_a_tombstone(cf: ClassFeed) -> None:
    post = cf.post({"text": "v1", "attachments": []})
    state, keys = cf.keys_of(cf.teacher)
    edited = rc.encrypt(cf.teacher.keys, cf.teacher.me, state, keys, "post", {"text": "v2", "attachments": []},
                        message_id=post, version=2)  # fmt: skip
    cf.storage.call(posts.edit_post, cf.ctx, cf.teacher.actor, cf.class_id, post, edited["message"])
    assert cf.read(cf.guardians[0])[0]["body"]["text"] == "v2"
    with pytest.raises(Conflict):  # the same version twice
        cf.storage.call(
            posts.edit_post, cf.ctx, cf.teacher.actor, cf.class_id, post, edited["message"]
        )
    with pytest.raises(PermissionDenied):
        cf.storage.call(posts.delete_message, cf.ctx, cf.guardians[0].actor, cf.class_id, post)
    cf.storage.call(posts.delete_message, cf.ctx, cf.teacher.actor, cf.class_id, post)
    assert cf.feed_of(cf.guardians[0])["items"] == []


def test_the_node_refuses_forged_and_foreign_log_entries(cf: ClassFeed) -> None:
    view = cf.view(cf.teacher)
    forger = cf.guardians[0]
    new, envelopes = rc.approve(forger.keys, view["entries"], [], cf.epoch_key)
    bad = rc._append(forger.keys, list(view["entries"]), "remove", {"member": cf.guardians[1].me})
    with pytest.raises(PermissionDenied):  # a guardian may not write the log at all
        cf.storage.call(groups.append_entries, cf.ctx, forger.actor, cf.class_id, [bad], [])
    with pytest.raises(Invalid):  # the teacher's account, but a guardian's signature
        cf.storage.call(groups.append_entries, cf.ctx, cf.teacher.actor, cf.class_id, [bad], [])
    assert new == [] and envelopes == []


def test_strangers_get_not_found(storage: Storage, ctx, cf: ClassFeed) -> None:  # type: ignore[no-untyped-def]
    other = make_staff(
        storage, ctx, "teacher", "Mme Autre", "autre@school.test", by=cf.school.admin
    )
    with pytest.raises(NotFound):
        storage.call(groups.group_view, ctx, other, cf.class_id)
    with pytest.raises(NotFound):
        storage.call(feed.class_feed, ctx, other, cf.class_id)


def test_a_guardian_shares_a_post_with_their_childs_other_guardian_only(cf: ClassFeed) -> None:
    first = cf.guardians[0]
    slip = invite(
        cf.storage, cf.ctx, cf.teacher.actor, first.child_id, phone="+33639985555", name="Sam"
    )
    actor = make_guardian(cf.storage, cf.ctx, slip.code, "+33639985555")
    second = Person(
        actor,
        client_account("+33639985555").keys,
        groups.member_id(cf.ctx, actor.account_id),
        first.child_id,
    )
    cf.approve_all()
    post = cf.post({"text": "Kermesse samedi", "attachments": []})
    item = next(i for i in cf.feed_of(first)["items"] if i["id"] == post)
    assert item["share_to"] == sorted([first.me, second.me])
    assert next(i for i in cf.feed_of(cf.guardians[1])["items"])["share_to"] == []  # no co-guardian
    with pytest.raises(Invalid):  # a share sealed to another family is refused
        cf.reply(first, post, "share", {"note": "x"}, to=sorted([first.me, cf.guardians[1].me]))
    share = cf.reply(first, post, "share", {"note": "On y va ?"}, to=item["share_to"])
    assert cf.read(second)[0]["replies"] == [{"note": "On y va ?"}]
    assert cf.read(cf.guardians[1])[0]["replies"] == []
    assert cf.read(cf.teacher)[0]["replies"] == []
    with pytest.raises(Invalid):  # nobody to share with
        cf.reply(cf.guardians[1], post, "share", {"note": "x"}, to=[cf.guardians[1].me])
    assert share


def test_a_teacher_whose_keys_were_reset_is_told_and_cannot_sign_for_the_class(
    cf: ClassFeed,
) -> None:
    cf.post({"text": "avant", "attachments": []})
    token = cf.storage.call(
        accounts.reissue_setup_link, cf.ctx, cf.school.admin, cf.teacher.actor.account_id
    )
    fresh = new_account("dubois@school.test", "a brand new passphrase", 600_000)
    cf.storage.call(accounts.complete_setup, cf.ctx, token, fresh.credentials)
    assert cf.view(cf.teacher)["status"] == "keys_changed"
    # the guardians still read what was posted before
    assert [i["body"]["text"] for i in cf.read(cf.guardians[0])] == ["avant"]


def test_a_guardian_with_new_keys_is_re_approved_and_the_teacher_re_shares_the_year(
    cf: ClassFeed,
) -> None:
    earlier = cf.post({"text": "avant la perte", "attachments": []})
    lost = cf.guardians[0]
    phone = "+33639980000"
    reset = cf.storage.call(directory.reissue_code, cf.ctx, cf.teacher.actor, _invitation_of(cf, 0))
    attempt = cf.storage.call(onboarding.start, cf.ctx, phone, reset.code, "192.0.2.1", "en")
    code = sms_code(cf.storage, cf.ctx.config.data_dir, phone)
    cf.storage.call(onboarding.verify_sms, cf.ctx, attempt.attempt_id, code, "192.0.2.1")
    fresh = new_account(phone, "a brand new passphrase", 600_000)
    cf.storage.call(onboarding.complete_reset, cf.ctx, attempt.attempt_id, fresh.credentials)
    renewed = Person(lost.actor, fresh.keys, lost.me, lost.child_id)
    # new keys: the node no longer serves the class until the teacher approves them again
    assert cf.view(renewed)["status"] == "waiting"
    assert [c["member"] for c in cf.view(cf.teacher)["to_approve"]] == [lost.me]
    cf.approve_all()
    assert [i["body"]["text"] for i in cf.read(renewed)] == ["avant la perte"]
    assert earlier


def test_an_admin_manages_the_class_but_is_not_a_member_of_its_feed(cf: ClassFeed) -> None:
    admin = cf.school.admin
    assert cf.storage.call(groups.group_view, cf.ctx, admin, cf.class_id).status == "outside"
    with pytest.raises(PermissionDenied):
        cf.storage.call(groups.require_member, cf.ctx, admin, cf.class_id)
    assert cf.storage.call(feed.class_feed, cf.ctx, admin, cf.class_id).items == []


def test_a_teacher_who_resets_with_the_recovery_key_keeps_the_class(cf: ClassFeed) -> None:
    cf.post({"text": "avant", "attachments": []})
    token = _fresh_link(cf)
    info = cf.storage.call(accounts.inspect_setup_link, cf.ctx, token)
    recovery = client_account("dubois@school.test").recovery_key
    kept = open_vault_with_recovery_key(info.vault, recovery)
    assert kept.sign_pk == cf.teacher.keys.sign_pk
    resealed = reseal_account(kept, "dubois@school.test", "a brand new passphrase", 600_000)
    cf.storage.call(accounts.complete_setup, cf.ctx, token, resealed.credentials)
    assert cf.view(cf.teacher)["status"] == "manager"
    cf.post({"text": "après", "attachments": []})
    assert [i["body"]["text"] for i in cf.read(cf.guardians[0])] == ["après", "avant"]


def _fresh_link(cf: ClassFeed) -> str:
    return str(
        cf.storage.call(
            accounts.reissue_setup_link, cf.ctx, cf.school.admin, cf.teacher.actor.account_id
        )
    )


def test_a_first_setup_link_carries_no_vault(storage: Storage, ctx) -> None:  # type: ignore[no-untyped-def]
    admin = make_staff(storage, ctx, "admin", "Mme Admin", "admin@school.test")
    _, token = storage.call(
        accounts.create_staff, ctx, admin, "teacher", "M. Neuf", "neuf@school.test"
    )
    assert storage.call(accounts.inspect_setup_link, ctx, token).vault is None


def test_replies_to_a_family_post_are_sealed_to_the_family_as_it_is_now(cf: ClassFeed) -> None:
    family = cf.guardians[0]
    slip = invite(
        cf.storage, cf.ctx, cf.teacher.actor, family.child_id, phone="+33639985556", name="Sam"
    )
    other = make_guardian(cf.storage, cf.ctx, slip.code, "+33639985556")
    cf.approve_all()
    post = cf.post({"text": "Pour Léa", "attachments": []}, children=[family.child_id])
    stale_to = sorted([cf.teacher.me, family.me, groups.member_id(cf.ctx, other.account_id)])
    sam = next(g.invitation_id for c in cf.storage.call(directory.class_roster, cf.ctx, cf.teacher.actor, cf.class_id)
               for g in c.guardians if g.display_name == "Sam")  # fmt: skip
    cf.storage.call(directory.remove_guardian, cf.ctx, cf.teacher.actor, sam)
    cf.remove_pending()
    with pytest.raises(Invalid):  # still sealed to Sam, who left
        cf.reply(family, post, "comment", {"text": "x"}, to=stale_to)
    item = next(i for i in cf.feed_of(family)["items"] if i["id"] == post)
    assert item["reply_to"] == sorted([cf.teacher.me, family.me])
    cf.reply(family, post, "comment", {"text": "merci"}, to=item["reply_to"])
    assert cf.read(cf.teacher)[0]["replies"] == [{"text": "merci"}]


@pytest.mark.parametrize(
    "keys",
    [[{"member": ["x"], "enc": "a", "ct": "b"}], [{"member": "x", "enc": 1, "ct": "b"}], ["x"]],
)
def test_malformed_sealed_keys_are_a_clear_400(cf: ClassFeed, keys: list[object]) -> None:
    post = cf.post({"text": "x", "attachments": []}, children=[cf.guardians[0].child_id])
    state, epoch_keys = cf.keys_of(cf.guardians[0])
    request = rc.encrypt(cf.guardians[0].keys, cf.guardians[0].me, state, epoch_keys, "comment", {"text": "x"},
                         parent=post, to=sorted([cf.teacher.me, cf.guardians[0].me]))  # fmt: skip
    with pytest.raises(Invalid):
        cf.storage.call(
            posts.add_reply,
            cf.ctx,
            cf.guardians[0].actor,
            cf.class_id,
            post,
            request["message"],
            keys=keys,
        )


def test_malformed_attachment_lists_are_refused_before_anything_is_stored(cf: ClassFeed) -> None:
    state, keys = cf.keys_of(cf.teacher)
    request = rc.encrypt(
        cf.teacher.keys, cf.teacher.me, state, keys, "post", {"text": "x", "attachments": []}
    )
    for blobs in ([[1]], "abc", [1], ["x" * 65]):
        with pytest.raises(Invalid):
            cf.storage.call(
                posts.create_post,
                cf.ctx,
                cf.teacher.actor,
                cf.class_id,
                request["message"],
                blobs=blobs,
            )
    assert cf.feed_of(cf.teacher)["items"] == []


@pytest.mark.parametrize(
    "member", ["03@127.0.0.1:8000", "9" * 40 + "@127.0.0.1:8000", "+3@127.0.0.1:8000"]
)
def test_an_add_must_name_an_account_exactly_as_the_node_does(cf: ClassFeed, member: str) -> None:
    view = cf.view(cf.teacher)
    g = cf.guardians[0]
    candidate = {"member": member, "role": "guardian", "sign_pk": rc.g.b64url_encode(g.keys.sign_pk),
                 "enc_pk": rc.g.b64url_encode(g.keys.enc_pk)}  # fmt: skip
    new, envelopes = rc.approve(cf.teacher.keys, view["entries"], [candidate], cf.epoch_key)
    with pytest.raises(Invalid):
        cf.storage.call(
            groups.append_entries, cf.ctx, cf.teacher.actor, cf.class_id, new, envelopes
        )


def test_a_guardian_gets_not_found_for_posts_they_cannot_see(cf: ClassFeed) -> None:
    hidden = cf.post({"text": "pour Tom", "attachments": []}, children=[cf.guardians[1].child_id])
    with pytest.raises(NotFound):
        cf.storage.call(posts.delete_message, cf.ctx, cf.guardians[0].actor, cf.class_id, hidden)
    with pytest.raises(NotFound):
        cf.storage.call(feed.mark_read, cf.ctx, cf.guardians[0].actor, cf.class_id, hidden)


def test_a_class_log_must_share_the_school_year(storage: Storage, ctx) -> None:  # type: ignore[no-untyped-def]
    cf = make_class_feed(storage, ctx, families=1, approve=False)
    other = make_class(storage, ctx, cf.teacher.actor, "CE2 B")
    keys, me = cf.teacher.keys, cf.teacher.me
    group, key, log = rc.g.new_group_id(), rc.g.new_epoch_key(), []
    rc._append(keys, log, "create", rc.g.create_body([keys.sign_pk], "from_join"), group)
    rc._append(keys, log, "add", rc.g.add_body(me, "teacher", keys.sign_pk, keys.enc_pk))
    rc._append(keys, log, "rotate", rc.g.rotate_body(group, 0, key, [me], None))
    envelopes = [rc.g.seal_epoch_key(group, 0, key, me, keys.enc_pk)]
    with pytest.raises(Invalid, match="school year"):
        storage.call(groups.create_group, ctx, cf.teacher.actor, other.id, log, envelopes)


class _QueryCounter(logging.Handler):
    """Counts the statements of one thread: the app's workers query on threads of their own."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.thread: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.count += 1


def _queries(storage: Storage, fn: Callable[..., object], *args: object) -> int:
    """How many SQL statements ``fn(*args)`` runs in storage (peewee logs each at DEBUG)."""
    logger = logging.getLogger("peewee")
    counter, level = _QueryCounter(), logger.level

    def counted() -> None:
        counter.thread = threading.get_ident()
        fn(*args)

    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    try:
        storage.call(counted)
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)
    return counter.count


def test_a_feed_page_costs_the_same_queries_for_2_posts_as_for_12(cf: ClassFeed) -> None:
    """No query per post or per reply: a page of 20 must not cost 20 round trips."""
    parent, teacher = cf.guardians[0], cf.teacher

    def add_posts(n: int) -> None:
        for i in range(n):
            whole = cf.post({"text": f"class {i}", "attachments": []})
            cf.reply(parent, whole, "comment", {"text": "merci"})
            cf.reply(cf.guardians[1], whole, "reaction", {"emoji": "👍"})
            family = cf.post({"text": f"family {i}", "attachments": []}, children=[parent.child_id])
            to = next(x["reply_to"] for x in cf.feed_of(parent)["items"] if x["id"] == family)
            cf.reply(parent, family, "comment", {"text": "bien reçu"}, to=to)

    def pages() -> tuple[int, int]:
        mine = _queries(cf.storage, feed.my_feed, cf.ctx, parent.actor)
        theirs = _queries(cf.storage, feed.class_feed, cf.ctx, teacher.actor, cf.class_id)
        return mine, theirs

    add_posts(1)
    few = pages()
    assert min(few) > 3  # the counter sees the service's own statements
    add_posts(5)
    assert len(cf.feed_of(parent)["items"]) == 12
    assert pages() == few


def test_the_teachers_feed_counts_readers_among_each_posts_audience(cf: ClassFeed) -> None:
    first, second, _ = cf.guardians
    whole = cf.post({"text": "Pour tous", "attachments": []})
    family = cf.post({"text": "Pour Léa", "attachments": []}, children=[first.child_id])
    for person in (first, second):
        cf.storage.call(feed.mark_read, cf.ctx, person.actor, cf.class_id, whole)
    cf.storage.call(feed.mark_read, cf.ctx, first.actor, cf.class_id, family)
    # the teacher's own reading is not a guardian's
    cf.storage.call(feed.mark_read, cf.ctx, cf.teacher.actor, cf.class_id, whole)

    def counts() -> dict[str, tuple[int, int]]:
        items = cf.storage.call(feed.class_feed, cf.ctx, cf.teacher.actor, cf.class_id).items
        return {i.id: i.receipts for i in items if i.receipts is not None}

    assert counts() == {whole: (2, 3), family: (1, 1)}
    # unlinked from the class (their removal not signed yet): out of the audience and the count
    cf.storage.call(directory.remove_guardian, cf.ctx, cf.teacher.actor, _invitation_of(cf, 1))
    assert counts() == {whole: (1, 2), family: (1, 1)}
    assert (
        as_json(cf.storage.call(feed.receipts, cf.ctx, cf.teacher.actor, cf.class_id, whole))[
            "read"
        ]
        == 1
    )
