"""``carnet demo``: a demo school seeded through the real services.

Accounts are created the way people create them: staff through their setup
links, guardians through access code → SMS code → passphrase.  The demo plays
the phone by reading the queued text, exactly what the console SMS backend
would show.  What it prints (logins, passphrases, access codes) is also saved
in ``demo-logins.txt`` in the data folder, since codes cannot be shown twice.
"""

from __future__ import annotations

import re

from node import refclient_groups as rc
from node.e2e.keys import AccountKeys
from node.refclient import login_secret, new_account
from node.services import accounts, directory, groups, onboarding, posts, sms_outbox
from node.services.context import Actor, ServiceContext
from node.storage import onboarding as sms_store

DEMO_PASSPHRASE = "demo passphrase for carnet"
DEMO_FILE = "demo-logins.txt"


def _staff(
    ctx: ServiceContext, admin: Actor | None, role: str, name: str, email: str
) -> tuple[Actor, AccountKeys]:
    view, token = accounts.create_staff(ctx, admin, role, name, email)
    client = new_account(email, DEMO_PASSPHRASE, ctx.config.kdf_iterations)
    grant = accounts.complete_setup(ctx, token, client.credentials, "carnet demo")
    accounts.logout(ctx, grant.actor)  # the seeding is not a device of theirs
    return grant.actor, client.keys


def _read_code(ctx: ServiceContext, phone: str) -> str:
    """Play the phone: take the code from the queued text, and mark the text delivered."""
    texts = sms_store.select_queued_sms_to(phone)
    match = re.search(r"\b(\d{6})\b", texts[-1].body or "")
    assert match, "the first-login text carries a 6-digit code"
    for text in texts:
        sms_outbox.record_result(ctx, text.id, "sent", "demo", None, False)
    return match[1]


def _activate(ctx: ServiceContext, phone: str, code: str) -> None:
    """The guardian's first login; the keys stay in their (simulated) browser."""
    attempt = onboarding.start(ctx, phone, code, "127.0.0.1", ctx.config.default_locale)
    verified = onboarding.verify_sms(ctx, attempt.attempt_id, _read_code(ctx, phone), "127.0.0.1")
    if verified.existing_kdf_salt:
        secret = login_secret(
            DEMO_PASSPHRASE, verified.existing_kdf_salt, verified.existing_kdf_iterations or 0
        )
        grant = onboarding.complete_existing(
            ctx, attempt.attempt_id, secret, "127.0.0.1", "carnet demo"
        )
    else:
        client = new_account(verified.login, DEMO_PASSPHRASE, ctx.config.kdf_iterations)
        grant = onboarding.complete_new(ctx, attempt.attempt_id, client.credentials, "carnet demo")
    accounts.logout(ctx, grant.actor)


def _open_feed(
    ctx: ServiceContext,
    teacher: Actor,
    keys: AccountKeys,
    class_id: int,
    messages: list[tuple[dict[str, object], list[int] | None]],
) -> None:
    """What the teacher's browser does on the class feed: keys, approvals, a few posts."""
    me = groups.member_id(ctx, teacher.account_id)
    log, envelopes, epoch_key = rc.setup_group(keys, me)
    groups.create_group(ctx, teacher, class_id, log, envelopes)
    view = groups.group_view(ctx, teacher, class_id)
    candidates = [c.__dict__ for c in view.to_approve]
    new, envelopes = rc.approve(keys, view.entries, candidates, epoch_key)
    if new:
        groups.append_entries(ctx, teacher, class_id, new, envelopes)
    view = groups.group_view(ctx, teacher, class_id)
    state, epoch_keys = rc.open_epoch_keys(
        {"entries": view.entries, "envelopes": view.envelopes, "me": me}, keys
    )
    for body, children in messages:
        to = None
        if children:
            wanted = {m for c in view.children if c.id in children for m in c.members}
            to = sorted(wanted | {me})
        request = rc.encrypt(keys, me, state, epoch_keys, "post", body, to=to)
        posts.create_post(
            ctx, teacher, class_id, request["message"], keys=request.get("keys"), children=children
        )


def seed_demo(ctx: ServiceContext) -> str:
    """Seed the demo school once; afterwards, print the same summary again."""
    summary_file = ctx.config.data_dir / DEMO_FILE
    if summary_file.exists():
        return summary_file.read_text(encoding="utf-8")
    url = ctx.config.public_url.rstrip("/")
    admin, _ = _staff(ctx, None, "admin", "Claire Directrice", "direction@demo.carnet.test")
    dubois, dubois_keys = _staff(ctx, admin, "teacher", "M. Dubois", "dubois@demo.carnet.test")
    nguyen, nguyen_keys = _staff(ctx, admin, "teacher", "Mme Nguyen", "nguyen@demo.carnet.test")
    ce1 = directory.create_class(ctx, dubois, "CE1 A")
    cm2 = directory.create_class(ctx, nguyen, "CM2 B")
    lea = directory.add_child(ctx, dubois, ce1.id, "Léa", "Martin")
    tom = directory.add_child(ctx, dubois, ce1.id, "Tom", "Bernard")
    directory.add_child(ctx, dubois, ce1.id, "Inès", "Petit")
    hugo = directory.add_child(ctx, nguyen, cm2.id, "Hugo", "Martin")
    directory.add_child(ctx, nguyen, cm2.id, "Jade", "Moreau")

    # Fictional numbers: the 06 39 98 range is reserved for fiction in France.
    camille = "+33639980001"
    slip = directory.register_guardian(ctx, dubois, lea.id, "Camille Martin", camille)
    _activate(ctx, camille, slip.code)
    slip = directory.register_guardian(ctx, nguyen, hugo.id, "Camille Martin", camille)
    _activate(ctx, camille, slip.code)
    karim = "+33639980003"
    slip = directory.register_guardian(ctx, dubois, tom.id, "Karim Bernard", karim)
    _activate(ctx, karim, slip.code)
    invited = [
        directory.register_guardian(ctx, dubois, lea.id, "Sam Martin", "+33639980002"),
        directory.register_guardian(ctx, dubois, tom.id, "Nadia Bernard", "+33639980004"),
    ]

    _open_feed(ctx, dubois, dubois_keys, ce1.id, [
        ({"text": "Bienvenue dans le carnet de la classe ! Vous trouverez ici les nouvelles de la classe.", "attachments": []}, None),
        ({"text": "Sortie au musée jeudi : prévoir un goûter et une casquette.", "attachments": []}, None),
        ({"text": "Tom a très bien présenté son exposé aujourd'hui.", "attachments": []}, [tom.id]),
    ])  # fmt: skip
    _open_feed(ctx, nguyen, nguyen_keys, cm2.id, [
        ({"text": "Réunion de rentrée mardi à 18 h dans la salle du CM2.", "attachments": []}, None),
    ])  # fmt: skip

    lines = [
        f"Carnet demo school: {ctx.config.school_name}",
        f"Open {url}/login — every demo passphrase is: {DEMO_PASSPHRASE}",
        "",
        "Staff (log in with the e-mail address):",
        "  admin     direction@demo.carnet.test   (Claire Directrice)",
        "  teacher   dubois@demo.carnet.test      (M. Dubois, class CE1 A)",
        "  teacher   nguyen@demo.carnet.test      (Mme Nguyen, class CM2 B)",
        "",
        "Active guardians (log in with the phone number):",
        "  06 39 98 00 01   Camille Martin: Léa (CE1 A) and Hugo (CM2 B)",
        "  06 39 98 00 03   Karim Bernard: Tom (CE1 A)",
        "",
        f"Invited guardians (first login at {url}/welcome; SMS codes appear in",
        f"  {ctx.config.data_dir / 'sms-outbox.jsonl'} and in the server log):",
    ]
    for s in invited:
        number = "06 39 98 00 0" + ("2" if "Sam" in s.guardian_name else "4")
        lines.append(f"  {number}   code {s.code}   {s.guardian_name}, guardian of {s.child_name}")
    text = "\n".join(lines) + "\n"
    summary_file.write_text(text, encoding="utf-8")
    summary_file.chmod(0o600)
    return text
