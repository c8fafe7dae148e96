"""Node-to-node protocol NP/1 (specification: ``docs/protocol/np1.md``).

Sans-IO cores: they take bytes, dicts, keys and Unix seconds and return
values or raise :mod:`federation.errors`; they open no socket, read no clock
and touch no database, and import only the standard library, nacl and each
other::

    canonical     RFC 8785 canonical JSON and the strict JSON reader
    encoding      base58btc, RFC 3339 timestamps, canonical origins and ids
    keys          Ed25519 Multikey text, key ids, fingerprints
    sfv           RFC 8941 structured fields (strict subset)
    digest        RFC 9530 Content-Digest
    httpsig       RFC 9421 request signatures, NP/1 Ed25519 profile
    proof         eddsa-jcs-2022 Data Integrity proofs
    nodedoc       the node document, key pinning rules
    keystatements planned rotation and emergency revocation statements
    activity      activities: build, sign, same-origin rule, strict checks
    transaction   transactions, pull pages, membership digests
    errors        the error tree and its machine-readable reasons

Transport (httpx), the inbox routes and storage are wired elsewhere and may
import these; these never import ``node`` or ``web``.
"""
