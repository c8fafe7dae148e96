"""When a child's family changes outside the class's log, the other schools hear of it.

A child's *family* is its approved guardians: those linked to the child who
are active members of the class's group.  Family threads, replies for a
family and absence notes are sealed to them and the teacher, and the class's
node checks them against it at once.  The teacher's approvals and removals
tell the schools of the child's guardians through the class's log
(``class_entries``); a link made or undone without a log change does it
here:

- the teacher unlinks a guardian (``directory.remove_guardian``);
- a guardian is erased (``erasure.erase_account``: their own request, or
  their home node's; the purge of families who left goes through it too, but
  erases only accounts linked to no child, so no family changes);
- a guardian of another school leaves (``remote_join.left``);
- an approved member is linked to another child of the class (a first login
  with a new slip, ``onboarding._finish``, or a join from another school,
  ``remote_join``).

The new school year links guardians to next year's class, whose group has
no approved member yet: its families start with the teacher's approvals.

Usage, inside the write transaction: ``changed = approved_links(ctx, account)``
before an unlink (after a link), then ``tell(ctx, changed)`` after it.  The
event (``families_changed``) is published only for this school's classes
with members on other nodes; its translator sends each school with a
guardian of those children their families, and gives the class's family
threads their new people.
"""

from __future__ import annotations

from node.services.context import ServiceContext
from node.storage import accounts as account_store
from node.storage import directory as directory_store
from node.storage import groups as group_store
from node.storage import mirrors as mirror_store


def approved_links(
    ctx: ServiceContext, account_id: int, child_id: int | None = None
) -> dict[int, set[int]]:
    """Class id → the children of this school's classes the account is linked to (only
    ``child_id`` when given) while an approved member of the class: the families the
    account is in."""
    account = account_store.select_account(account_id)
    if account is None:
        return {}
    host = ctx.config.origin.split("://", 1)[1]
    member = directory_store.remote_member_of(account.login) or f"{account.id}@{host}"
    found: dict[int, set[int]] = {}
    for child in directory_store.select_children_of_guardian(account_id):
        if child.school_class.peer_id is None and child_id in (None, child.id):
            found.setdefault(child.school_class_id, set()).add(child.id)
    for class_id in sorted(found):
        group = group_store.select_group_of_class(class_id)
        if group is None or not group_store.active_members(group.id, [member]):
            del found[class_id]
    return found


def tell(ctx: ServiceContext, changed: dict[int, set[int]]) -> None:
    """The families of those children changed (links already made or undone): the schools
    of their guardians are told, for each class with members on other nodes."""
    for class_id, children in sorted(changed.items()):
        group = group_store.select_group_of_class(class_id)
        if group is not None and mirror_store.remote_active_members(group.id, class_id):
            ctx.publish("families_changed", {"class_id": class_id, "children": sorted(children)})
