"""Permission checks: pure functions over an actor and already-loaded rows.

Each check raises the error a person should see.  Things an actor may not
see at all raise NotFound rather than PermissionDenied, so ids of other
classes or children reveal nothing (ASVS 8.2.2).
"""

from __future__ import annotations

from node.errors import N_, NotFound, PermissionDenied
from node.services.context import Actor
from node.storage.directory import SchoolClass


def require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise PermissionDenied(N_("Only a school admin can do this."))


def require_teacher(actor: Actor) -> None:
    if not (actor.is_teacher or actor.is_admin):
        raise PermissionDenied(N_("Only a teacher can do this."))


def require_guardian(actor: Actor) -> None:
    if not actor.is_guardian:
        raise PermissionDenied(N_("This page is for parents and guardians."))


def can_manage_class(actor: Actor, school_class: SchoolClass) -> bool:
    """The class's teacher and the school admins manage a class of this school (a class
    of another school, mirrored for its guardians here, is managed there)."""
    if school_class.peer_id is not None:
        return False
    return actor.is_admin or (actor.is_teacher and school_class.teacher_id == actor.account_id)


def require_class_manager(
    actor: Actor, school_class: SchoolClass | None, missing: str = N_("No such class.")
) -> SchoolClass:
    """The class, if the actor manages it.

    ``missing`` is the one message for "does not exist" and "not yours" alike,
    named after what the caller looked up (a child, a guardian), so an id
    reveals nothing about other classes.
    """
    if school_class is None or not can_manage_class(actor, school_class):
        raise NotFound(missing)
    if school_class.archived_at is not None:
        raise PermissionDenied(N_("This class is archived."))
    return school_class
