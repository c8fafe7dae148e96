"""Erasing a guardian: on their request, when their family left, or when their home node asks.

What goes (docs/security.md, "Erasure"):
- the account row, with its sessions, push subscriptions, notification
  settings and queue, read receipts, calendar token, conversation memberships,
  blocks, and its keys and encrypted vault;
- their guardianships; the invitations that held their name and phone are
  withdrawn and blanked (the row stays so the child can be found to have left);
- what they wrote: comments, reactions, shares, chat messages and absence
  notes become tombstones (ciphertext, signature, sealed keys and files
  deleted; the row stays so others' threads keep their shape, and the
  schools that were sent a copy are told to delete it too); their reports of
  chat messages are deleted outright (nothing hangs on them); the openings of
  conversations and membership changes they made stay as they are, because
  others' messages hang on them (their author becomes nobody);
- absence-note rows and the answers they gave to actionable posts;
- files they uploaded, from disk too, once the transaction committed.

What stays: posts (the teacher's), the class's signed membership log, whose
entries name their pseudonymous member id and public keys (the log cannot be
edited without breaking every member's verification), and the audit events
(pseudonymous) until the audit retention ends.

Who may: a guardian erases their own account (typing a confirmation word);
staff accounts belong to the school and are disabled by an admin instead.
An erasure is effective at once; their home node tells every school whose
class they are in (``guardian_erased``: a signed Delete of the person,
NP/1 §6.7), and that school erases their copy there the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node.errors import N_, Invalid, PermissionDenied
from node.services import audit, families, mirrors, posts
from node.services.context import Actor, ServiceContext
from node.storage import retention as store
from node.storage.db import write_transaction

#: message kinds others' messages hang on: kept when their author is erased
KINDS_KEPT = ("post", "conversation", "member")
#: what a person types to confirm (either language; case and spaces do not matter)
CONFIRM_WORDS = ("DELETE", "SUPPRIMER")


@dataclass(frozen=True)
class Erased:
    messages: int
    files: list[str]


def erase_account(ctx: ServiceContext, account_id: int) -> Erased:
    """Erase one guardian account here, inside the caller's write transaction.

    Returns the files to delete from disk once the transaction committed
    (``delete_files``): deleting them before could lose them for a rollback.
    """
    now = ctx.now()
    files: list[str] = []
    rows = store.messages_authored(account_id, KINDS_KEPT)
    classes = store.classes_of_groups({row.group_id for row in rows})
    for row in rows:
        files += store.blank_message(row, now)
        school_class = classes.get(row.group_id)
        if school_class is not None and school_class.peer_id is None:
            # our class: the schools that were sent this message delete their copy
            ctx.publish(
                "messages_deleted",
                {"class_id": school_class.id, "messages": [[row.public_id, row.revision]]},
            )
    # a report was for the teacher alone and nothing hangs on it: it goes with its row
    # (a blank one would sit in the teacher's list as a report that cannot be read)
    store.delete_messages([row.id for row in rows if row.kind == "report"])
    store.delete_absence_notes_by(account_id)
    store.delete_answers_by(account_id)
    _tell_their_classes(ctx, account_id)
    files += store.blob_ids_owned(account_id)
    store.delete_blobs_owned(account_id)
    changed = families.approved_links(ctx, account_id)  # the families they leave
    store.delete_links_of(account_id, now)
    store.delete_account(account_id)
    families.tell(ctx, changed)
    return Erased(len(rows), files)


def _tell_their_classes(ctx: ServiceContext, account_id: int) -> None:
    """Classes of other schools they joined: forget our mirror of them, and tell each
    school once (one activity per school, naming the classes there)."""
    by_peer: dict[int, list[str]] = {}
    for join in store.live_joins_of(account_id):
        if join.state == "accepted":
            mirrors.forget(ctx, join.class_url, account_id, None)
        by_peer.setdefault(join.peer_id, [])
        if join.class_url and join.class_url not in by_peer[join.peer_id]:
            by_peer[join.peer_id].append(join.class_url)
    for peer_id, class_urls in sorted(by_peer.items()):
        ctx.publish(
            "guardian_erased",
            {
                "peer_id": peer_id,
                "actor": f"{ctx.config.origin}/users/{account_id}",
                "classes": class_urls,
            },
        )


def delete_files(ctx: ServiceContext, erased: Erased) -> None:
    blob_store = posts.blob_store(ctx)
    for public_id in erased.files:
        blob_store.delete(public_id)


def _confirmed(raw: Any) -> None:
    word = raw.strip().upper() if isinstance(raw, str) else ""
    if word not in CONFIRM_WORDS:
        raise Invalid(
            N_("Type DELETE (or SUPPRIMER) to confirm that your account is deleted."),
            field="confirm",
        )


def require_may_erase(ctx: ServiceContext, actor: Actor) -> None:
    """Guardians delete their own account; staff accounts are the school's."""
    if not actor.is_guardian:
        raise PermissionDenied(
            N_("Staff accounts belong to the school: ask a school admin to disable yours.")
        )


def request_erasure(ctx: ServiceContext, actor: Actor, confirm: Any) -> Erased:
    """A guardian deletes their own account now; every session of theirs ends with it."""
    require_may_erase(ctx, actor)
    _confirmed(confirm)
    with write_transaction():
        if store.select_account(actor.account_id) is None:
            raise PermissionDenied(N_("Log in first."))
        erased = erase_account(ctx, actor.account_id)
        audit.record(ctx, "erasure_requested", actor, actor.account_id, messages=erased.messages)
    delete_files(ctx, erased)
    return erased


def erase_remote(ctx: ServiceContext, peer_id: int, actor_url: str) -> int:
    """A peer's guardian was erased on their home node: erase their shadow here (inside the
    inbox's transaction).  Returns how many accounts were erased (0: none known here)."""
    erased_files: list[str] = []
    ids = store.accounts_of_remote_actor(peer_id, actor_url)
    for account_id in sorted(ids):
        if store.select_account(account_id) is None:
            continue
        erased = erase_account(ctx, account_id)
        audit.record(ctx, "erasure_received", None, account_id, peer=peer_id)
        erased_files += erased.files
    # the inbox has no after-commit step for handlers: the files go now, as in
    # mirrors.forget (should the transaction roll back, their rows would name missing files)
    delete_files(ctx, Erased(0, erased_files))
    return len(ids)
