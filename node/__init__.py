"""Carnet school node.  ``create_app`` is the only public name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quart import Quart


def create_app(overrides: dict[str, Any] | None = None) -> Quart:
    """Build the node application (see ``node.app.create_app``)."""
    from node.app import create_app as _create_app

    return _create_app(overrides)
