"""Server entry point only: ``hypercorn node.asgi:app``.  Never imported by tests.

Importing it is what starting a server means, so it also switches Hypercorn's
cleartext HTTP/2 off, as ``carnet serve`` does (``node/http11.py`` says why).
"""

from node import http11
from node.app import create_app

http11.install()
app = create_app()
