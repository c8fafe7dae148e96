"""Python reference client of the carnet-e2e-1 suite.

Sans-IO: no network, no database, no files. Used by tests, scripts and the
node to verify signatures; the node never decrypts.

Specification: ``docs/protocol/e2e-suite.md``. The browser implementation is
``web/static/js/e2e/suite.js``; both are checked against
``tests/vectors/e2e-suite.json``.
"""

SUITE = "carnet-e2e-1"
"""Suite identifier, written into every document and domain-separation label."""
