"""Server entry point only: ``hypercorn node.asgi:app``.  Never imported by tests."""

from node.app import create_app

app = create_app()
