"""Limits on what one account writes: messages per hour, uploads in progress, bytes per day.

A stolen session or a runaway client must not flood a class or fill the
school's disk; a refused write stores nothing and is not counted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from node.errors import Conflict, RateLimited
from node.services import blobs, ratelimit
from node.services.context import ServiceContext
from node.storage import feed as feed_store
from node.storage.db import Storage
from tests.chat_factories import accept, change, make_chat_class, open_conversation, say
from tests.feed_factories import make_class_feed


@pytest.fixture
def node_config(node_config: dict[str, Any]) -> dict[str, Any]:
    node_config.update(
        messages_per_account_per_hour=3,
        uploads_in_progress_per_account=2,
        upload_bytes_per_account_per_day=1_000,
    )
    return node_config


def _messages(storage: Storage) -> int:
    return int(storage.call(lambda: feed_store.Message.select().count()))


def test_an_account_past_its_messages_per_hour_is_refused_and_nothing_is_stored(
    storage: Storage, ctx: ServiceContext
) -> None:
    cf = make_class_feed(storage, ctx, families=1)
    post = cf.post({"text": "Sortie vendredi"})
    cf.reply(cf.guardians[0], post, "comment", {"text": "Merci"})
    cf.reply(cf.guardians[0], post, "reaction", {"emoji": "👍"})
    cf.reply(cf.guardians[0], post, "comment", {"text": "À vendredi"})
    stored = _messages(storage)
    with pytest.raises(RateLimited) as refused:
        cf.reply(cf.guardians[0], post, "comment", {"text": "Encore un"})
    assert "great many messages" in refused.value.message
    assert refused.value.retry_after == 3600
    assert _messages(storage) == stored
    # the limit is per account: the teacher can still post
    cf.post({"text": "Rappel"})
    # an hour later, the guardian may write again
    later = dataclasses.replace(ctx, clock=lambda: ctx.now() + dt.timedelta(minutes=61))
    storage.call(ratelimit.count_message, later, cf.guardians[0].actor.account_id)


def test_a_refused_message_does_not_count(storage: Storage, ctx: ServiceContext) -> None:
    cf = make_class_feed(storage, ctx, families=1)
    post = cf.post({"text": "Sortie"})
    for _ in range(4):
        with pytest.raises(Conflict):  # sealed to the wrong readers: refused inside the write
            cf.reply(cf.guardians[0], post, "comment", {"text": "x"}, to=[cf.guardians[0].me])
    for text in ("un", "deux", "trois"):
        cf.reply(cf.guardians[0], post, "comment", {"text": text})


def test_chat_messages_and_new_conversations_count_too(
    storage: Storage, ctx: ServiceContext
) -> None:
    cf = make_chat_class(storage, ctx, families=2)
    parent = cf.guardians[0]
    accept(cf, parent)
    room = open_conversation(cf, parent, "room", [parent.me])
    say(cf, parent, room, "Bonjour")
    say(cf, parent, room, "Qui vient vendredi ?")
    with pytest.raises(RateLimited):
        say(cf, parent, room, "Un de trop")
    other = cf.guardians[1]
    accept(cf, other)
    change(cf, other, room, "join", other.me)
    say(cf, other, room, "Moi")


def _start(storage: Storage, ctx: ServiceContext, cf: Any, size: int) -> str:
    return str(storage.call(blobs.start_upload, ctx, cf.teacher.actor, cf.class_id, size).id)


def test_uploads_in_progress_and_bytes_per_day_are_bounded_per_account(
    storage: Storage, ctx: ServiceContext
) -> None:
    cf = make_class_feed(storage, ctx, families=1)
    _start(storage, ctx, cf, 400)
    _start(storage, ctx, cf, 400)
    with pytest.raises(RateLimited) as waiting:
        _start(storage, ctx, cf, 16)
    assert "waiting to be attached" in waiting.value.message
    # another account has its own allowance
    guardian = cf.guardians[0].actor
    storage.call(blobs.start_upload, ctx, guardian, cf.class_id, 900)
    with pytest.raises(RateLimited) as daily:
        storage.call(blobs.start_upload, ctx, guardian, cf.class_id, 200)
    assert "per day" in daily.value.message
    # a day later the bytes are counted again from zero (the abandoned uploads
    # still wait: housekeeping deletes them)
    tomorrow = dataclasses.replace(ctx, clock=lambda: ctx.now() + dt.timedelta(hours=25))
    storage.call(blobs.start_upload, tomorrow, guardian, cf.class_id, 16)
