"""Random tokens, access codes and keyed hashes.  Pure functions over the node secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

#: Crockford-style alphabet without look-alikes (no I, L, O, U; no 0/1 confusion on paper).
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
#: 17 symbols of a 30-letter alphabet carry 83 bits, above the 80 the design asks for.
GENERATED_CODE_LENGTH = 17


def new_token() -> str:
    """A 256-bit URL-safe token (sessions, setup links, attempt handles)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Tokens are stored hashed so a database leak does not leak live sessions."""
    return hashlib.sha256(token.encode()).hexdigest()


def keyed_hash(secret: bytes, purpose: str, value: str) -> str:
    """HMAC-SHA256 with a purpose label, for codes the node must check but never show."""
    msg = purpose.encode() + b"\x00" + value.encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def generate_access_code() -> str:
    """A random access code, printed in groups of four for reading aloud."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(GENERATED_CODE_LENGTH))
    return format_access_code(raw)


def format_access_code(code: str) -> str:
    compact = normalize_access_code(code)
    return "-".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def normalize_access_code(code: str) -> str:
    """Upper-case, drop spaces and dashes, fold look-alikes so a slip read aloud still works."""
    compact = "".join(ch for ch in code.upper() if ch not in " -\u00a0\t")
    return compact.replace("O", "0").replace("I", "1").replace("L", "1")


def generate_sms_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def fake_salt(secret: bytes, login: str) -> str:
    """A stable salt for unknown logins, so prelogin does not reveal who has an account."""
    digest = hmac.new(secret, b"prelogin\x00" + login.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
