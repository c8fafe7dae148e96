"""What unlocks a vault: passphrase derivation and the recovery key.

Bitwarden model: the passphrase is stretched once with PBKDF2-HMAC-SHA256
into ``master``; HKDF then derives two independent keys from it, the
*login secret* (sent to the node, which stores only a hash of it) and the
*passphrase wrap key* (never leaves the client). The node therefore cannot
unwrap the vault with what it receives at login.

The recovery key is 20 random bytes shown as base32 in 8 groups of 4.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field

from node.e2e import primitives as p
from node.e2e.encoding import EncodingError, b32_decode, b32_encode, group

MIN_ITERATIONS = 600_000
"""Lowest PBKDF2 iteration count accepted by the public API (OWASP 2023)."""

MAX_ITERATIONS = 10_000_000
"""Highest count accepted, so a hostile node cannot make clients spin forever."""

SALT_LEN = 16
MIN_PASSPHRASE_CHARS = 12
MAX_PASSPHRASE_BYTES = 1024
RECOVERY_KEY_BYTES = 20

INFO_LOGIN_SECRET = b"carnet-e2e-1/login-secret"
INFO_WRAP_PASSPHRASE = b"carnet-e2e-1/vault-wrap/passphrase"
INFO_WRAP_RECOVERY = b"carnet-e2e-1/vault-wrap/recovery"

WHITESPACE = frozenset(
    "\u0009\u000a\u000b\u000c\u000d\u0020\u0085\u00a0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
"""Unicode ``White_Space`` characters; a passphrase made only of these is refused."""


class PassphraseError(ValueError):
    """A passphrase breaks the policy. ``code`` is stable, the message is for humans.

    Codes: ``not_string``, ``invalid_text`` (lone surrogates), ``too_short``,
    ``too_long``, ``blank``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class IterationsError(ValueError):
    """The PBKDF2 iteration count is outside the accepted range."""


class RecoveryKeyError(ValueError):
    """A recovery key could not be parsed."""


def check_passphrase(passphrase: str) -> str:
    """Apply the passphrase policy and return the NFC-normalized passphrase.

    Policy: after NFC normalization, at least 12 Unicode code points, at most
    1024 UTF-8 bytes, and not only whitespace.

    Raises:
        PassphraseError: With a stable ``code`` and a readable message.
    """
    if not isinstance(passphrase, str):
        raise PassphraseError("not_string", "The passphrase must be text.")
    try:
        passphrase.encode("utf-8")
    except UnicodeEncodeError:
        raise PassphraseError(
            "invalid_text", "The passphrase contains invalid characters."
        ) from None
    nfc = unicodedata.normalize("NFC", passphrase)
    if len(nfc) < MIN_PASSPHRASE_CHARS:
        raise PassphraseError(
            "too_short",
            f"The passphrase must have at least {MIN_PASSPHRASE_CHARS} characters "
            f"(it has {len(nfc)}).",
        )
    if len(nfc.encode("utf-8")) > MAX_PASSPHRASE_BYTES:
        raise PassphraseError(
            "too_long", f"The passphrase must not exceed {MAX_PASSPHRASE_BYTES} bytes in UTF-8."
        )
    if all(ch in WHITESPACE for ch in nfc):
        raise PassphraseError("blank", "The passphrase must not be only spaces.")
    return nfc


def check_iterations(iterations: int, *, _unsafe_low_iterations_for_tests: bool = False) -> None:
    """Refuse iteration counts outside ``[MIN_ITERATIONS, MAX_ITERATIONS]``.

    Args:
        iterations: The PBKDF2 iteration count.
        _unsafe_low_iterations_for_tests: Lower the minimum to 1. Test vectors
            only; never set it in application code.

    Raises:
        IterationsError: If the count is not an int in range.
    """
    minimum = 1 if _unsafe_low_iterations_for_tests else MIN_ITERATIONS
    if isinstance(iterations, bool) or not isinstance(iterations, int):
        raise IterationsError("PBKDF2 iterations must be an integer")
    if not minimum <= iterations <= MAX_ITERATIONS:
        raise IterationsError(
            f"PBKDF2 iterations must be between {minimum} and {MAX_ITERATIONS}, got {iterations}"
        )


@dataclass(frozen=True)
class PassphraseSecrets:
    """The two keys derived from a passphrase (32 bytes each)."""

    login_secret: bytes = field(repr=False)
    passphrase_wrap_key: bytes = field(repr=False)


def derive_from_passphrase(
    passphrase: str,
    salt: bytes,
    iterations: int = MIN_ITERATIONS,
    *,
    _unsafe_low_iterations_for_tests: bool = False,
) -> PassphraseSecrets:
    """Derive the login secret and the passphrase wrap key.

    ``master = PBKDF2-HMAC-SHA256(NFC(passphrase), salt, iterations, 32)``;
    ``login_secret = HKDF(master, "", "carnet-e2e-1/login-secret", 32)``;
    ``passphrase_wrap_key = HKDF(master, "", "carnet-e2e-1/vault-wrap/passphrase", 32)``.

    Args:
        passphrase: The user's passphrase; the policy is checked first.
        salt: 16 random bytes, stored in the vault's passphrase wrap.
        iterations: At least :data:`MIN_ITERATIONS`.
        _unsafe_low_iterations_for_tests: See :func:`check_iterations`.

    Raises:
        PassphraseError: If the passphrase breaks the policy.
        IterationsError: If ``iterations`` is out of range.
    """
    nfc = check_passphrase(passphrase)
    check_iterations(iterations, _unsafe_low_iterations_for_tests=_unsafe_low_iterations_for_tests)
    if not isinstance(salt, bytes) or len(salt) != SALT_LEN:
        raise ValueError(f"salt must be {SALT_LEN} bytes")
    master = p.pbkdf2_sha256(nfc.encode("utf-8"), salt, iterations, 32)
    return PassphraseSecrets(
        login_secret=p.hkdf(master, b"", INFO_LOGIN_SECRET, 32),
        passphrase_wrap_key=p.hkdf(master, b"", INFO_WRAP_PASSPHRASE, 32),
    )


def generate_recovery_bytes() -> bytes:
    """20 random bytes for a new recovery key."""
    return os.urandom(RECOVERY_KEY_BYTES)


def format_recovery_key(raw: bytes) -> str:
    """Render 20 bytes as ``XXXX-XXXX-…`` (base32, 8 groups of 4, upper case)."""
    if not isinstance(raw, bytes) or len(raw) != RECOVERY_KEY_BYTES:
        raise ValueError(f"a recovery key is {RECOVERY_KEY_BYTES} bytes")
    return group(b32_encode(raw), 4, "-")


def parse_recovery_key(text: str) -> bytes:
    """Parse a recovery key typed by a person.

    Case-insensitive; spaces and dashes anywhere are ignored.

    Raises:
        RecoveryKeyError: If it is not 32 base32 characters (20 bytes).
    """
    if not isinstance(text, str):
        raise RecoveryKeyError("The recovery key must be text.")
    compact = "".join(ch for ch in text if ch not in " -")
    if len(compact) != 32:
        raise RecoveryKeyError(
            f"A recovery key has 32 letters and digits (not counting dashes); got {len(compact)}."
        )
    try:
        return b32_decode(compact, what="recovery key")
    except EncodingError:
        raise RecoveryKeyError(
            "The recovery key may only contain letters A-Z and digits 2-7."
        ) from None


def recovery_wrap_key(recovery: bytes) -> bytes:
    """``HKDF(recovery_bytes, "", "carnet-e2e-1/vault-wrap/recovery", 32)``."""
    if len(recovery) != RECOVERY_KEY_BYTES:
        raise ValueError(f"a recovery key is {RECOVERY_KEY_BYTES} bytes")
    return p.hkdf(recovery, b"", INFO_WRAP_RECOVERY, 32)
