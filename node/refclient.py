"""What a browser sends when it creates or uses an account, built with the Python reference suite.

The demo seeding and the tests use this to act exactly as the web client
does (``web/static/js/pages``): generate keys, derive the login secret from a
passphrase, seal the vault, prove possession of the signing key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from node.e2e.encoding import b64url_decode, b64url_encode
from node.e2e.kdf import derive_from_passphrase
from node.e2e.keys import AccountKeys, account_keys_proof, generate_account_keys
from node.e2e.vault import create_vault
from node.services.credentials import Credentials


@dataclass(frozen=True)
class ClientAccount:
    """A client-side account: the credentials sent, and the secrets kept."""

    credentials: Credentials
    keys: AccountKeys
    recovery_key: str
    passphrase: str


def new_account(login: str, passphrase: str, iterations: int = 600_000) -> ClientAccount:
    """Keys, vault and login secret for ``login`` as the browser makes them at first login."""
    return reseal_account(generate_account_keys(), login, passphrase, iterations)


def reseal_account(
    keys: AccountKeys, login: str, passphrase: str, iterations: int = 600_000
) -> ClientAccount:
    """A new vault, passphrase and recovery key around existing keys (a reset with the recovery key)."""
    salt = secrets.token_bytes(16)
    derived = derive_from_passphrase(passphrase, salt, iterations)
    vault, recovery_key = create_vault(keys, passphrase, salt, iterations)
    creds = Credentials(
        kdf_salt=b64url_encode(salt),
        kdf_iterations=iterations,
        login_secret=b64url_encode(derived.login_secret),
        sign_pk=b64url_encode(keys.sign_pk),
        enc_pk=b64url_encode(keys.enc_pk),
        vault=vault,
        proof=account_keys_proof(keys.sign_sk, keys.sign_pk, keys.enc_pk, login),
    )
    return ClientAccount(creds, keys, recovery_key, passphrase)


def login_secret(passphrase: str, salt_b64: str, iterations: int) -> str:
    """The login secret for a later login, from the salt the node's prelogin returns."""
    derived = derive_from_passphrase(passphrase, b64url_decode(salt_b64, length=16), iterations)
    return b64url_encode(derived.login_secret)


def credentials_json(creds: Credentials) -> dict[str, Any]:
    return {
        "kdf_salt": creds.kdf_salt,
        "kdf_iterations": creds.kdf_iterations,
        "login_secret": creds.login_secret,
        "sign_pk": creds.sign_pk,
        "enc_pk": creds.enc_pk,
        "vault": creds.vault,
        "proof": creds.proof,
    }
