"""Fixtures for the crash tests: a node's data folder on SQLite, set up by a node that then stops.

These tests kill processes writing to one SQLite file: they are about
SQLite's recovery (PostgreSQL's is the server's), so they run in the SQLite
phase only.  The data folders take no ``postgres_url``: on PostgreSQL runs
they are left out with the other tests that do not touch that database.

Making accounts costs their real key derivations, so the school of the
alert and upload scenarios is made once per test process and its folder
copied for each test (``school_folder``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.testing.app import TestApp

from node.app import create_app
from node.datafolder import create_keys
from node.services.context import Actor, ServiceContext
from tests.alert_factories import make_alert_school
from tests.conftest import PUBLIC_URL
from tests.faults import kill
from tests.push_factories import fake_browser

#: the families of ``make_class_feed``'s first phones (their client keys are made once per process)
FAMILIES = 3
#: unkilled runs that time an operation before the trials
CALIBRATION = 2


@pytest.fixture
def node_folder(tmp_path: Path, migrated_sqlite: Path) -> Path:
    return _empty_folder(tmp_path / "node", migrated_sqlite)


def _empty_folder(folder: Path, migrated_sqlite: Path) -> Path:
    create_keys(folder)
    shutil.copyfile(migrated_sqlite, folder / "carnet.sqlite3")
    return folder


def folder_config(folder: Path) -> dict[str, Any]:
    return {
        "data_dir": str(folder),
        "public_url": PUBLIC_URL,
        "school_name": "École des Tests",
        "default_locale": "en",
    }


@asynccontextmanager
async def running(folder: Path) -> AsyncIterator[Quart]:
    """A node on ``folder`` for the setup; leaving the block stops it and closes its database."""
    application = create_app(folder_config(folder))
    async with TestApp(application, startup_timeout=30, shutdown_timeout=30):
        yield application


@dataclasses.dataclass
class AlertSchool:
    """A school whose admin set up the alert keys: a class of ``FAMILIES`` families, each
    with a push device; the data folder (a copy) and what the tests act with."""

    folder: Path
    ctx: ServiceContext
    admin: Actor
    teacher: Actor
    class_id: int
    guardians: int
    #: one signed alert per trial (and calibration run), made by the admin's "browser"
    messages: list[dict[str, Any]]


@pytest.fixture(scope="session")
def school_template(tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> AlertSchool:
    folder = _empty_folder(tmp_path_factory.mktemp("faults") / "node", migrated_sqlite)

    async def setup() -> AlertSchool:
        async with running(folder) as app:
            storage, ctx = app.config["CARNET_STORAGE"], app.config["CARNET_CTX"]
            made = make_alert_school(storage, ctx, families=FAMILIES)
            for person in made.guardians:
                fake_browser().subscribe(storage, ctx, person.actor)
            n = CALIBRATION + kill.trials()
            messages = [made.alert_message("lockdown", f"Confinement n°{i}.") for i in range(n)]
        teacher = made.feed.teacher.actor
        return AlertSchool(
            folder, ctx, made.admin.actor, teacher, made.feed.class_id, FAMILIES, messages
        )

    return asyncio.run(setup())


@pytest.fixture
def school_folder(school_template: AlertSchool, tmp_path: Path) -> AlertSchool:
    """A copy of the school's data folder for one test, and a context pointing at it."""
    folder = tmp_path / "node"
    shutil.copytree(school_template.folder, folder)
    config = dataclasses.replace(school_template.ctx.config, data_dir=folder)
    ctx = dataclasses.replace(school_template.ctx, config=config)
    return dataclasses.replace(school_template, folder=folder, ctx=ctx)
