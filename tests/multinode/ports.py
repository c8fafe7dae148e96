"""Ports on 127.0.0.1 that stay ours for as long as a node or proxy lives.

Picking a port with ``bind(0)`` and closing it is racy: the OS hands the same
port to the next ``bind(0)``, in this process (a fault proxy) or another
(a parallel pytest worker), before the node gets to bind it, and a node
restarted after a kill needs its port back. This happened in practice.

So a port is *reserved*: a socket with ``SO_REUSEADDR`` is bound to it and
never listens. While it exists, Linux gives the port to no ``bind(0)`` and
no outgoing connection, refuses it to any plain ``bind``, yet lets a server
that sets ``SO_REUSEADDR`` (hypercorn, asyncio) bind and listen on it, as
many times as it restarts. Connections go to the listening socket only.
Closing the reservation releases the port.

Rule: only 127.0.0.1, and only ports the OS chose.
"""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def reserve_port() -> socket.socket:
    """A socket holding a free port on 127.0.0.1 (``getsockname()[1]``); close it to release."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])
