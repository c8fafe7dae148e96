"""Fixtures for the crash tests: a node's data folder on SQLite, set up by a node that then stops.

These tests kill processes writing to one SQLite file: they are about
SQLite's recovery (PostgreSQL's is the server's), so they run in the SQLite
phase only.  The data folder takes no ``postgres_url``: on PostgreSQL runs
they are left out with the other tests that do not touch that database.
"""

from __future__ import annotations

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
from tests.conftest import PUBLIC_URL


@pytest.fixture
def node_folder(tmp_path: Path, migrated_sqlite: Path) -> Path:
    folder = tmp_path / "node"
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
