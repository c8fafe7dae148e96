"""Domain services: the one place that decides who may do what.

Rule: pages, the JSON API, the CLI and (later) the federation inbox call these
functions and nothing else; none of them queries models.  Services are
synchronous, run inside ``Storage.run`` (off the event loop), take a
``ServiceContext`` and an ``Actor``, and return plain view objects, never
models.  They import nothing from quart, httpx, ``federation`` or ``web``.
"""
