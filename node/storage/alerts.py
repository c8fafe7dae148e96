"""Emergency alerts: the thread, its encrypted messages, every recipient and the school's policy.

A send writes the alert, its first message, one ``alert_recipient`` row per
guardian and one ``alert_child`` row per (child, guardian) in one
transaction (``node.services.alerts``); these functions insert those rows a
few hundred per statement so that a school of 2,000 families commits in
one short transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import peewee

from node.storage.accounts import Account
from node.storage.db import BaseModel, insert_rows, locked
from node.storage.directory import Child, GuardianInvitation, Guardianship, SchoolClass
from node.storage.onboarding import SmsMessage


def _pk(model: type[BaseModel]) -> Any:
    """The primary key column (``Model.id`` is typed ``int`` for rows)."""
    return model._meta.primary_key


class AlertPolicy(BaseModel):
    sms_delay_seconds = peewee.IntegerField(default=120)
    sms_with_text = peewee.BooleanField(default=False)
    two_person = peewee.BooleanField(default=False)
    updated_at = peewee.DateTimeField()

    class Meta:
        table_name = "alert_policy"


class Alert(BaseModel):
    public_id = peewee.CharField(max_length=22, unique=True)
    #: an alert of another school, for our guardians: that peer's row id, its id there, its name
    peer_id = peewee.BigIntegerField(null=True)
    remote_url = peewee.CharField(max_length=400, null=True)
    school = peewee.CharField(max_length=120, null=True)
    sender = peewee.CharField(max_length=120, null=True)
    template = peewee.CharField(max_length=16)
    drill = peewee.BooleanField()
    sent_by = peewee.ForeignKeyField(
        Account, null=True, on_delete="SET NULL", column_name="sent_by", object_id_name="sent_by_id"
    )
    sent_by_id: int | None
    #: awaiting_approval | active | closed | cancelled
    state = peewee.CharField(max_length=20)
    approved_by = peewee.ForeignKeyField(
        Account, null=True, on_delete="SET NULL", backref="approved_alerts",
        column_name="approved_by", object_id_name="approved_by_id",
    )  # fmt: skip
    approved_by_id: int | None
    sms_text = peewee.CharField(max_length=320)
    created_at = peewee.DateTimeField()
    sent_at = peewee.DateTimeField(null=True)
    escalate_at = peewee.DateTimeField(null=True)
    closed_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "alert"


class AlertMessage(BaseModel):
    alert = peewee.ForeignKeyField(Alert, on_delete="CASCADE")
    alert_id: int
    seq = peewee.IntegerField()
    public_id = peewee.CharField(max_length=22, unique=True)
    template = peewee.CharField(max_length=16)
    wire = peewee.TextField()
    sent_by = peewee.ForeignKeyField(
        Account, null=True, on_delete="SET NULL", column_name="sent_by", object_id_name="sent_by_id"
    )
    sent_by_id: int | None
    created_at = peewee.DateTimeField()

    class Meta:
        table_name = "alert_message"


class AlertRecipient(BaseModel):
    alert = peewee.ForeignKeyField(Alert, on_delete="CASCADE")
    alert_id: int
    account = peewee.ForeignKeyField(Account, on_delete="CASCADE")
    account_id: int
    delivered_at = peewee.DateTimeField(null=True)
    acknowledged_at = peewee.DateTimeField(null=True)
    #: none | queued | sent | failed | no_phone | drill | remote (texted by their own node)
    sms_state = peewee.CharField(max_length=10, default="none")
    sms_reference = peewee.CharField(max_length=43, null=True)
    sms_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "alert_recipient"


class AlertChild(BaseModel):
    alert = peewee.ForeignKeyField(Alert, on_delete="CASCADE")
    alert_id: int
    child = peewee.ForeignKeyField(Child, on_delete="CASCADE")
    child_id: int
    school_class = peewee.ForeignKeyField(
        SchoolClass, column_name="class_id", object_id_name="school_class_id", on_delete="CASCADE"
    )
    school_class_id: int
    account = peewee.ForeignKeyField(Account, null=True, on_delete="CASCADE")
    account_id: int | None

    class Meta:
        table_name = "alert_child"


# --------------------------------------------------------------------------- policy


def select_policy() -> AlertPolicy | None:
    return AlertPolicy.select().order_by(AlertPolicy.id).first()


# --------------------------------------------------------------------------- who an alert is for


def school_families() -> list[tuple[int, int, int | None]]:
    """(child id, class id, guardian account id or None) for every child of this school's classes.

    Classes mirrored from other schools and archived classes are left out;
    a child with no guardian account yet has one row with None.
    """
    return [(child, klass, account) for child, klass, account, _, _ in school_families_with_facts()]


def school_families_with_facts() -> list[tuple[int, int, int | None, str | None, str | None]]:
    """``school_families`` with each guardian's account status and phone, in one query."""
    query: Any = (
        Child.select(
            Child.id, Child.school_class, Guardianship.account, Account.status, Account.phone
        )
        .join(SchoolClass, on=(Child.school_class == SchoolClass.id))
        .switch(Child)
        .join(Guardianship, peewee.JOIN.LEFT_OUTER, on=(Guardianship.child == Child.id))
        .join(Account, peewee.JOIN.LEFT_OUTER, on=(Guardianship.account == Account.id))
        .where(SchoolClass.peer_id.is_null() & SchoolClass.archived_at.is_null())
        .order_by(Child.id)
    )
    return list(query.tuples())


def select_account_facts(account_ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
    """account id → (status, phone) for the accounts named."""
    ids = sorted(set(account_ids))
    out: dict[int, tuple[str, str | None]] = {}
    for start in range(0, len(ids), 900):
        query: Any = Account.select(Account.id, Account.status, Account.phone).where(
            _pk(Account).in_(ids[start : start + 900])
        )
        out.update({a: (s, p) for a, s, p in query.tuples()})
    return out


def insert_recipients(alert_id: int, account_ids: list[int]) -> None:
    insert_rows(
        AlertRecipient,
        ("alert", "account", "sms_state"),
        [(alert_id, a, "none") for a in account_ids],
    )


def insert_children(alert_id: int, rows: list[tuple[int, int, int | None]]) -> None:
    insert_rows(
        AlertChild, ("alert", "child", "school_class", "account"),
        [(alert_id, c, k, a) for c, k, a in rows],
    )  # fmt: skip


# --------------------------------------------------------------------------- reading


def select_alert(public_id: str, lock: bool = False) -> Alert | None:
    if "\x00" in public_id:  # no id has one, and PostgreSQL refuses it in a query (a 500)
        return None
    return locked(Alert.select().where(Alert.public_id == public_id), lock).first()


def select_alerts(limit: int) -> list[Alert]:
    """This school's own alerts, newest first."""
    query = Alert.select().where(Alert.peer_id.is_null())
    return list(query.order_by(Alert.created_at.desc(), _pk(Alert).desc()).limit(limit))


def remote_recipients(alert_id: int) -> list[tuple[int, str, int]]:
    """(account id, login, home peer id) of the alert's guardians living on other nodes."""
    query: Any = (
        AlertRecipient.select(AlertRecipient.account, Account.login, Account.home_peer_id)
        .join(Account, on=(AlertRecipient.account == Account.id))
        .where(
            (AlertRecipient.alert == alert_id)
            & (Account.status == "remote")
            & Account.home_peer_id.is_null(False)
        )
    )
    return list(query.tuples())


def select_alerts_of(account_id: int, limit: int) -> list[Alert]:
    """The alerts sent to this guardian, newest first."""
    query = (
        Alert.select()
        .join(AlertRecipient, on=(AlertRecipient.alert == Alert.id))
        .where((AlertRecipient.account == account_id) & (Alert.state != "awaiting_approval"))
        .order_by(Alert.created_at.desc(), _pk(Alert).desc())
        .limit(limit)
    )
    return list(query)


def select_labels(alert_ids: Iterable[int]) -> dict[int, tuple[str, bool, str, str | None]]:
    """Alert id → (public id, drill?, state, sender's display name): what a push notice names."""
    ids = sorted(set(alert_ids))
    if not ids:
        return {}
    query: Any = (
        Alert.select(Alert.id, Alert.public_id, Alert.drill, Alert.state, Account.display_name)
        .join(Account, peewee.JOIN.LEFT_OUTER, on=(Alert.sent_by == Account.id))
        .where(_pk(Alert).in_(ids))
    )
    return {a: (p, d, s, n) for a, p, d, s, n in query.tuples()}


def select_messages(alert_id: int) -> list[AlertMessage]:
    query = AlertMessage.select().where(AlertMessage.alert == alert_id)
    return list(query.order_by(AlertMessage.seq))


def select_recipient(alert_id: int, account_id: int) -> AlertRecipient | None:
    return AlertRecipient.get_or_none(
        (AlertRecipient.alert == alert_id) & (AlertRecipient.account == account_id)
    )


def select_recipients(alert_id: int) -> list[AlertRecipient]:
    return list(AlertRecipient.select().where(AlertRecipient.alert == alert_id))


def recipient_accounts(alert_id: int) -> list[int]:
    query: Any = AlertRecipient.select(AlertRecipient.account).where(
        AlertRecipient.alert == alert_id
    )
    return [a for (a,) in query.tuples()]


def select_children(alert_id: int) -> list[AlertChild]:
    return list(AlertChild.select().where(AlertChild.alert == alert_id))


def mark_delivered(
    alert_ids_accounts: Iterable[tuple[int, int]], when: dt.datetime
) -> dict[int, list[int]]:
    """Set ``delivered_at`` where it is still empty, a few statements per alert.

    Returns alert id → the accounts it was set for now (not those set before).
    """
    per_alert: dict[int, list[int]] = {}
    for alert_id, account_id in alert_ids_accounts:
        per_alert.setdefault(alert_id, []).append(account_id)
    newly: dict[int, list[int]] = {}
    for alert_id, accounts in per_alert.items():
        for start in range(0, len(accounts), 900):
            waiting = (
                (AlertRecipient.alert == alert_id)
                & AlertRecipient.account.in_(accounts[start : start + 900])
                & AlertRecipient.delivered_at.is_null()
            )
            query: Any = AlertRecipient.select(AlertRecipient.account).where(waiting)
            found = [a for (a,) in query.tuples()]
            if found:
                AlertRecipient.update(delivered_at=when).where(waiting).execute()
                newly.setdefault(alert_id, []).extend(found)
    return newly


def mirrored(alert_ids: Iterable[int]) -> set[int]:
    """The alerts among ``alert_ids`` that are other schools' (mirrored here)."""
    ids = sorted(set(alert_ids))
    if not ids:
        return set()
    query: Any = Alert.select(_pk(Alert)).where(_pk(Alert).in_(ids) & Alert.peer_id.is_null(False))
    return {a for (a,) in query.tuples()}


def due_escalations(now: dt.datetime) -> list[Alert]:
    """Active, non-drill alerts whose SMS delay has passed and still have escalation to do."""
    query = Alert.select().where(
        (Alert.state == "active") & Alert.escalate_at.is_null(False) & (Alert.escalate_at <= now)
    )
    return list(query)


def unacknowledged_without_text(alert_id: int) -> list[AlertRecipient]:
    query = AlertRecipient.select().where(
        (AlertRecipient.alert == alert_id)
        & AlertRecipient.acknowledged_at.is_null()
        & (AlertRecipient.sms_state == "none")
    )
    return list(query)


def set_sms_state(alert_id: int, account_ids: list[int], state: str, when: dt.datetime) -> None:
    for start in range(0, len(account_ids), 900):
        AlertRecipient.update(sms_state=state, sms_at=when).where(
            (AlertRecipient.alert == alert_id)
            & AlertRecipient.account.in_(account_ids[start : start + 900])
        ).execute()


def acknowledgements_of(account_id: int, alert_ids: list[int]) -> dict[int, dt.datetime | None]:
    query: Any = AlertRecipient.select(AlertRecipient.alert, AlertRecipient.acknowledged_at).where(
        (AlertRecipient.account == account_id) & AlertRecipient.alert.in_(alert_ids or [0])
    )
    return dict(query.tuples())


def reach_rows(alert_id: int) -> list[dict[str, Any]]:
    """Per (child, guardian) of the alert: class, names, and what reached the guardian."""
    query: Any = (
        AlertChild.select(
            AlertChild.child.alias("child_id"),
            AlertChild.school_class.alias("class_id"),
            AlertChild.account.alias("account_id"),
            Child.first_name,
            Child.last_name,
            SchoolClass.name.alias("class_name"),
            Account.display_name,
            AlertRecipient.delivered_at,
            AlertRecipient.acknowledged_at,
            AlertRecipient.sms_state,
            SmsMessage.status.alias("sms_status"),
        )
        .join(Child, on=(AlertChild.child == Child.id))
        .switch(AlertChild)
        .join(SchoolClass, on=(AlertChild.school_class == SchoolClass.id))
        .switch(AlertChild)
        .join(Account, peewee.JOIN.LEFT_OUTER, on=(AlertChild.account == Account.id))
        .switch(AlertChild)
        .join(
            AlertRecipient,
            peewee.JOIN.LEFT_OUTER,
            on=(
                (AlertRecipient.alert == AlertChild.alert)
                & (AlertRecipient.account == AlertChild.account)
            ),
        )
        .join(
            SmsMessage,
            peewee.JOIN.LEFT_OUTER,
            on=(SmsMessage.reference == AlertRecipient.sms_reference),
        )
        .where(AlertChild.alert == alert_id)
        .order_by(SchoolClass.name, Child.first_name, Child.last_name, Child.id)
    )
    return list(query.dicts())


def school_invitations() -> list[dict[str, Any]]:
    """Every live invitation of this school's classes, with its child, class and account state."""
    query: Any = (
        GuardianInvitation.select(
            _pk(GuardianInvitation).alias("invitation_id"),
            GuardianInvitation.display_name,
            GuardianInvitation.expires_at,
            GuardianInvitation.account.alias("account_id"),
            Account.status,
            _pk(Child).alias("child_id"),
            Child.first_name,
            Child.last_name,
            _pk(SchoolClass).alias("class_id"),
            SchoolClass.name.alias("class_name"),
        )
        .join(Child, on=(GuardianInvitation.child == Child.id))
        .join(SchoolClass, on=(Child.school_class == SchoolClass.id))
        .switch(GuardianInvitation)
        .join(Account, peewee.JOIN.LEFT_OUTER, on=(GuardianInvitation.account == Account.id))
        .where(
            GuardianInvitation.revoked_at.is_null()
            & SchoolClass.peer_id.is_null()
            & SchoolClass.archived_at.is_null()
        )
        .order_by(SchoolClass.name, Child.first_name, Child.last_name, GuardianInvitation.id)
    )
    return list(query.dicts())


def accounts_with_failed_alert_texts(since: dt.datetime) -> set[int]:
    """Guardians an alert SMS could not reach since ``since``."""
    query: Any = (
        AlertRecipient.select(AlertRecipient.account)
        .join(SmsMessage, on=(SmsMessage.reference == AlertRecipient.sms_reference))
        .where((SmsMessage.status == "failed") & (AlertRecipient.sms_at >= since))
        .distinct()
    )
    return {a for (a,) in query.tuples()}


def recipient_times(alert_id: int) -> list[tuple[Any, Any, str]]:
    """(delivered_at, acknowledged_at, sms_state) of every recipient of the alert."""
    query: Any = AlertRecipient.select(
        AlertRecipient.delivered_at, AlertRecipient.acknowledged_at, AlertRecipient.sms_state
    ).where(AlertRecipient.alert == alert_id)
    return list(query.tuples())
