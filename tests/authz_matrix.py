"""The authorization matrix: for every rule of the app's URL map, who may reach it.

Issue 7 (ASVS 8.2.1–8.2.3, 8.4.1): each route names the people who
rightfully reach it and how to fill its URL with objects of "the other
side" (class Y of another teacher, child B of another family, a
conversation a parent is not in, a post of class Y…).  The test
(``tests/node/api/test_authorization_matrix.py``) makes every request as
everyone else and expects 401/403/404 (a redirect to the login page for a
page asked anonymously), never a success and never a server error; the
rightful people's reads must succeed, so the matrix cannot pass vacuously.
Ids sent in a request body are covered too (``Case.body``: another
family's child in an absence note, a family thread, a poll's answer).

A route without an entry here fails that test: adding a route means
deciding, in this file, who may reach it.

The world (``World`` in the test) is one school with:

* class X of ``teacher_x``: child A (``guardian_a`` and the separated parent
  ``guardian_a2``, two accounts) and child C (``guardian_c``);
* class Y of ``teacher_y``: child B (``guardian_b``);
* the school's ``admin``; ``anonymous`` (no session);
* ``peer_p``, a confirmed peer school that follows no class here, and
  ``node_q``, a node that is no peer: they only sign ``/np/`` requests.

One school per node: "school S vs T" is the peer/non-peer pair.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

ANON = "anonymous"
GA, GA2, GC, GB = "guardian_a", "guardian_a2", "guardian_c", "guardian_b"
TX, TY, ADMIN = "teacher_x", "teacher_y", "admin"
PEER, NODE_Q = "peer_p", "node_q"

GUARDIANS = frozenset({GA, GA2, GC, GB})
STAFF = frozenset({TX, TY, ADMIN})
SESSION = GUARDIANS | STAFF
#: who asks with a browser session (or none): the actors of /api/v1 and pages
BROWSER_ACTORS = (ANON, *sorted(SESSION))
#: who asks a route about no object in particular, where only the role counts
ONE_PER_ROLE = (ANON, GA, TX, ADMIN)
#: who asks a /np/ route: nobody signed, a peer, a node that is no peer
NODE_ACTORS = (ANON, PEER, NODE_Q)
EVERYONE = frozenset({ANON, *SESSION, PEER, NODE_Q})
NOBODY: frozenset[str] = frozenset()
MANAGES_Y = frozenset({TY, ADMIN})
IN_Y = frozenset({TY, GB})
IN_X_C = frozenset({TX, GC})  # what concerns child C only, in A's class


@dataclass(frozen=True)
class Case:
    """One way to fill the route's URL, and who rightfully reaches it so filled."""

    allowed: frozenset[str]
    #: URL parameter → name of a world object (``World.objects``)
    params: dict[str, str] = field(default_factory=dict)
    #: request body field → a world object (an id in the body that is the other side's),
    #: ``own:<kind>[@parent]`` (a message the asker signs), ``self`` or a plain value
    body: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    cases: tuple[Case, ...]
    #: why the rightful people's GET is not made (a live stream never ends)
    no_read: str = ""


def to(allowed: Iterable[str], no_read: str = "", **params: str) -> Entry:
    return Entry((Case(frozenset(allowed), dict(params)),), no_read)


def case(allowed: Iterable[str], body: dict[str, str] | None = None, **params: str) -> Case:
    return Case(frozenset(allowed), dict(params), body or {})


def either(*cases: Case) -> Entry:
    return Entry(tuple(cases))


def token_routes(real: str) -> Entry:
    """A capability URL: whoever holds the token, nobody with another one."""
    return either(case(EVERYONE, token=real), case(NOBODY, token="unknown_token"))


#: a conversation of class Y (its people only) and child C's family thread in class X
#: (not guardian A's, who is in the same class)
CONVERSATION = either(
    case(IN_Y, class_id="class_y", conversation_id="conversation_y"),
    case(IN_X_C, class_id="class_x", conversation_id="conversation_c"),
)

MATRIX: dict[str, Entry] = {
    # ---- public pages, files and documents
    "pages.index": to(EVERYONE),
    "pages.favicon": to(EVERYONE),
    "pages.healthz": to(EVERYONE),
    "pages.language": to(EVERYONE),
    "static": to(EVERYONE, filename="stylesheet"),
    "push.service_worker": to(EVERYONE),
    "auth.login": to(EVERYONE),
    "auth.logout": to(EVERYONE),
    "auth.welcome": to(EVERYONE),
    "auth.setup": token_routes("setup_token"),
    "calendar.feed": token_routes("calendar_token"),
    "np.node_document": to(EVERYONE),
    "api.openapi_document": to(EVERYONE),
    "api.get_session": to(EVERYONE),
    "api.login": to(EVERYONE),
    "api.logout": to(EVERYONE),
    "api.prelogin": to(EVERYONE),
    "api.setup_info": token_routes("setup_token"),
    "api.setup_complete": token_routes("setup_token"),
    # first login of a guardian: the slip's code is the credential (checked in the body)
    "api.start": to(EVERYONE),
    "api.verify": to(EVERYONE),
    "api.resend": to(EVERYONE),
    "api.complete": to(EVERYONE),
    "api.complete_existing": to(EVERYONE),
    "api.reset": to(EVERYONE),
    # the SMS provider's callbacks: its shared secret, which no actor here has
    "api.sms_status": to(NOBODY),
    "api.sms_reply": to(NOBODY),
    # ---- one's own account: sessions, keys, notifications
    "account.index": to(SESSION),
    "account.end_other_sessions": to(SESSION),
    "account.quiet_hours": to(SESSION),
    "account.digest": to(SESSION),
    "account.end_session": to({GA}, session_id="session_a"),
    "account.remove_device": to({GA}, subscription_id="subscription_a"),
    "api.me": to(SESSION),
    "api.my_vault": to(SESSION),
    "api.my_sessions": to(SESSION),
    "api.end_other_sessions": to(SESSION),
    "api.change_passphrase": to(SESSION),
    "api.end_session": to({GA}, session_id="session_a"),
    "api.events": to(SESSION, no_read="a live event stream: it never ends"),
    "api.get_settings": to(SESSION),
    "api.set_settings": to(SESSION),
    "api.set_digest": to(SESSION),
    "api.push_key": to(SESSION),
    "api.my_subscriptions": to(SESSION),
    "api.subscribe": to(SESSION),
    "api.unsubscribe": to(SESSION),
    "api.remove_device": to({GA}, subscription_id="subscription_a"),
    # ---- guardians
    "guardian.home": to(GUARDIANS),
    "api.my_children": to(GUARDIANS),
    "api.my_feed": to(SESSION),  # one's own timeline (empty for staff)
    "api.calendar_info": to(GUARDIANS),
    # a guardian's data export (GDPR art. 15/20): their own data only
    "api.my_export": to(GUARDIANS),
    "api.export_posts": to(GUARDIANS),
    "export.page": to(GUARDIANS),
    # a guardian erases their own account (staff accounts are the school's)
    "api.erase_me": to(GUARDIANS),
    "audit.erase_form": to(GUARDIANS),
    "audit.erase": to(GUARDIANS),
    "api.export_conversation": either(
        case({GB}, class_id="class_y", conversation_id="conversation_y"),
        case({GC}, class_id="class_x", conversation_id="conversation_c"),
    ),
    "api.calendar_new": to(GUARDIANS),
    "api.my_joins": to(GUARDIANS),
    "api.start_join": to(GUARDIANS),
    "api.leave_join": to({GA}, request_id="join_a"),
    "api.join_code": to({GA}, request_id="join_a"),
    "api.join_resend": to({GA}, request_id="join_a"),
    "joins.index": to(GUARDIANS),
    "joins.start": to(GUARDIANS),
    "joins.detail": to({GA}, request_id="join_a"),
    "joins.code": to({GA}, request_id="join_a"),
    "joins.resend": to({GA}, request_id="join_a"),
    "joins.leave": to({GA}, request_id="join_a"),
    # ---- the admin: staff, accounts, peers
    "admin.index": to({ADMIN}),
    "admin.create_staff": to({ADMIN}),
    "admin.reissue": to({ADMIN}, account_id="account_teacher_y"),
    "admin.disable": to({ADMIN}, account_id="account_guardian_b"),
    "school_year.index": to({ADMIN}),
    "school_year.start": to({ADMIN}),
    "audit.index": to({ADMIN}),
    "audit.pseudonym": to({ADMIN}),
    "api.audit_log": to({ADMIN}),
    "api.list_staff": to({ADMIN}),
    "api.create_staff": to({ADMIN}),
    "api.reissue_setup": to({ADMIN}, account_id="account_teacher_y"),
    "api.disable": to({ADMIN}, account_id="account_guardian_b"),
    "peers.index": to({ADMIN}),
    "peers.add": to({ADMIN}),
    "peers.detail": to({ADMIN}, peer_id="peer_p"),
    "peers.confirm": to({ADMIN}, peer_id="peer_p"),
    "peers.cancel": to({ADMIN}, peer_id="peer_p"),
    "peers.stop_page": to({ADMIN}, peer_id="peer_p"),
    "peers.stop": to({ADMIN}, peer_id="peer_p"),
    "api.list_peers": to({ADMIN}),
    "api.add_peer": to({ADMIN}),
    "api.get_peer": to({ADMIN}, peer_id="peer_p"),
    "api.confirm_peer": to({ADMIN}, peer_id="peer_p"),
    "api.retire_peer": to({ADMIN}, peer_id="peer_p"),
    # ---- emergency alerts: sent by the admin to the guardians then in the alert group
    # (class X's); guardian B joined the group after it was sent
    "alerts.index": to({ADMIN}),
    "alerts.worklist": to({ADMIN}),
    "alerts.alert": to({ADMIN, GA, GA2, GC}, alert_id="alert"),
    "api.list_alerts": to(GUARDIANS | {ADMIN}),  # a guardian's own alerts
    "api.send_alert": to({ADMIN}),
    "api.alert_policy": to({ADMIN}),
    "api.set_alert_policy": to({ADMIN}),
    "api.worklist": to({ADMIN}),
    "api.get_alert": to({ADMIN, GA, GA2, GC}, alert_id="alert"),
    "api.acknowledge": to({GA, GA2, GC}, alert_id="alert"),
    "api.approve": to({ADMIN}, alert_id="alert"),
    "api.cancel": to({ADMIN}, alert_id="alert"),
    "api.follow_up": to({ADMIN}, alert_id="alert"),
    "api.reach": to({ADMIN}, alert_id="alert"),
    "api.school_group_view": to(SESSION),  # one's own view: entries for members only
    "api.school_group_create": to({ADMIN}),
    "api.school_group_append": to({ADMIN}),
    # ---- classes, children, guardians' slips (the class's teacher and the admin)
    "teacher.classes": to(STAFF),
    "teacher.create_class": to(STAFF),
    "teacher.class_page": to(MANAGES_Y, class_id="class_y"),
    "teacher.add_child": to(MANAGES_Y, class_id="class_y"),
    "teacher.class_slips": to(MANAGES_Y, class_id="class_y"),
    "teacher.register_guardian": to(MANAGES_Y, child_id="child_b"),
    "teacher.reissue_code": to(MANAGES_Y, invitation_id="invitation_b"),
    "teacher.remove_guardian": to(MANAGES_Y, invitation_id="invitation_b"),
    "api.list_classes": to(STAFF),
    "api.create_class": to(STAFF),
    "api.get_class": to(MANAGES_Y, class_id="class_y"),
    "api.add_child": to(MANAGES_Y, class_id="class_y"),
    "api.class_slips": to(MANAGES_Y, class_id="class_y"),
    "api.register_guardian": to(MANAGES_Y, child_id="child_b"),
    "api.reissue_code": to(MANAGES_Y, invitation_id="invitation_b"),
    "api.remove_guardian": to(MANAGES_Y, invitation_id="invitation_b"),
    # ---- a class's encrypted group (keys), feed and posts
    # the admin manages every class: sees its group's log and timeline, never a key
    "api.get_group": to(IN_Y | {ADMIN}, class_id="class_y"),
    "api.create_group": to({TY}, class_id="class_y"),
    "api.append_entries": to({TY}, class_id="class_y"),
    "api.add_envelopes": to({TY}, class_id="class_y"),
    "feed.class_feed": to(IN_Y | {ADMIN}, class_id="class_y"),
    "api.class_posts": to(IN_Y | {ADMIN}, class_id="class_y"),
    "api.create_post": to({TY}, class_id="class_y"),
    "api.class_comments": to({TY}, class_id="class_y"),
    "api.start_upload": to(IN_Y, class_id="class_y"),
    "api.upload_part": to({TY}, blob_id="upload_y"),
    "api.complete_upload": to({TY}, blob_id="upload_y"),
    "api.download": to(IN_Y, blob_id="blob_y"),
    "api.edit_post": to({TY}, class_id="class_y", message_id="post_y"),
    "api.delete_message": to({TY}, class_id="class_y", message_id="post_y"),
    "api.post_comments": to({TY}, class_id="class_y", message_id="post_y"),
    "api.receipts": to({TY}, class_id="class_y", message_id="post_y"),
    "api.remind": to({TY}, class_id="class_y", message_id="post_y"),
    "api.reply": to(IN_Y, class_id="class_y", message_id="post_y"),
    "api.mark_read": to(IN_Y, class_id="class_y", message_id="post_y"),
    "api.answer_action": either(
        case({GB}, class_id="class_y", message_id="post_y"),
        # class X's poll, answered for child A by anyone but A's parents
        case({GA, GA2}, class_id="class_x", message_id="poll_x", body={"child": "child_a"}),
    ),
    "api.action_answers": either(
        case({TY}, class_id="class_y", message_id="post_y"),
        case({TX}, class_id="class_x", message_id="poll_x"),
    ),
    "api.remind_action": to({TY}, class_id="class_y", message_id="post_y"),
    # ---- absence notes: a family's note, read by the class's teacher
    "absences.class_absences": to(IN_Y | {ADMIN}, class_id="class_y"),
    "api.list_notes": to(IN_Y, class_id="class_y"),
    "api.report": either(
        case({GB}, class_id="class_y"),
        # child A's note, in A's class, by anyone but A's parents
        case({GA, GA2}, class_id="class_x", body={"child": "child_a", "message": "own:absence"}),
    ),
    "api.mark_seen": either(
        case({TY}, class_id="class_y", message_id="note_y"),
        case({TX}, class_id="class_x", message_id="note_c"),
    ),
    "api.withdraw": either(
        case({GB}, class_id="class_y", message_id="note_y"),
        case({GC}, class_id="class_x", message_id="note_c"),
    ),
    # ---- conversations and parent chat
    "chat.chat_index": to(IN_Y, class_id="class_y"),
    "chat.chat_reports": to({TY}, class_id="class_y"),
    "chat.chat_conversation": CONVERSATION,
    "chat.chat_message": either(
        case(IN_Y, class_id="class_y", message_id="chat_y"),
        case(IN_X_C, class_id="class_x", message_id="chat_c"),
    ),
    "api.chat_overview": to(IN_Y, class_id="class_y"),
    "api.chat_settings": to({TY}, class_id="class_y"),
    "api.chat_reports": to({TY}, class_id="class_y"),
    "api.handle_report": to({TY}, class_id="class_y", message_id="chat_y"),
    "api.accept_conduct": to({GB}, class_id="class_y"),
    "api.set_block": to({GB}, class_id="class_y"),
    "api.open_conversation": either(
        case(IN_Y, class_id="class_y"),
        # a thread about child A, in A's class: its teacher and A's parents only
        case(
            {TX, GA, GA2},
            class_id="class_x",
            body={"child": "child_a", "kind": "family", "message": "own:conversation"},
        ),
    ),
    "api.get_conversation": CONVERSATION,
    "api.send_chat_message": CONVERSATION,
    # class Y's parents' room, opened by guardian B: who is in it changes it, reports in it
    "api.change_conversation_members": either(
        case(
            {GB},
            class_id="class_y",
            conversation_id="room_y",
            body={"member": "self", "message": "own:member@room_y"},
        ),
    ),  # fmt: skip
    "api.report_message": to(
        {GB}, class_id="class_y", conversation_id="room_y", message_id="room_chat_y"
    ),
    # a message is deleted by its author only
    "api.delete_chat_message": either(
        case({TY}, class_id="class_y", conversation_id="conversation_y", message_id="chat_y"),
        case({TX}, class_id="class_x", conversation_id="conversation_c", message_id="chat_c"),
    ),
    # ---- other schools' nodes: signed /np/ requests
    "np.key_statement": to({PEER}),
    "np.transaction": to({PEER}, txn_id="txn"),
    "np.join_start": to({PEER}),
    "np.join_code": to(NOBODY, join_id="remote_join"),
    "np.join_resend": to(NOBODY, join_id="remote_join"),
    # peer P follows no class here: class Y's streams, members and files are not its
    "np.class_members": to(NOBODY, class_id="class_y"),
    "np.stream_page": to(NOBODY, path="stream_y"),
    "np.media_blob": to(NOBODY, blob_id="blob_y"),
}
