"""Typed node configuration.

Layers, later ones winning: the defaults below → ``carnet.toml`` in the data
folder (or the file named by ``CARNET_CONFIG``) → ``CARNET_*`` environment
variables → the ``overrides`` mapping given to ``create_app``.  Loading happens
in the factory (or the CLI), never at import time.

Environment names are the field names upper-cased with a ``CARNET_`` prefix;
section fields join with a double underscore: ``CARNET_SMS__BACKEND=http``.
``DATABASE_URL`` is also honoured, as most hosting platforms set it.
Variables under ``CARNET_TEST_``, ``CARNET_DEMO_`` and ``CARNET_PG_`` belong
to the project's scripts, not to the node, and are ignored; any other unknown
``CARNET_*`` name is an error, so a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_type_hints
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message says which and why."""


@dataclasses.dataclass
class SmsConfig:
    #: ``console`` writes texts to the log and to ``sms-outbox.jsonl`` in the data
    #: folder (development, demo, tests); ``http`` posts them to a provider.
    backend: Literal["console", "http"] = "console"
    #: Provider endpoint for the ``http`` backend (JSON POST).
    http_url: str = ""
    #: Bearer token sent as ``Authorization: Bearer …`` to the provider.
    http_token: str = ""
    #: Sender name or number passed to the provider.
    http_sender: str = "Carnet"
    #: Sender of emergency alert texts; empty: ``http_sender``.  A number of its own
    #: keeps alerts flowing to a parent who answered STOP to the other texts (carriers
    #: and providers block a sender per number on STOP).
    http_alert_sender: str = ""
    #: JSON field names of the provider's request and response.
    http_to_field: str = "to"
    http_text_field: str = "text"
    http_sender_field: str = "from"
    http_reference_field: str = "reference"
    http_id_field: str = "id"
    #: Attempts per text before it is marked failed (network errors, 429, 5xx).
    http_max_attempts: int = 3
    #: Seconds of the first retry delay; doubles at each attempt.
    http_retry_base_delay: float = 0.5
    #: Seconds before a provider request times out.
    http_timeout: float = 10.0
    #: Shared secret the provider sends back in ``X-Carnet-Sms-Secret`` on delivery
    #: status callbacks (``POST /api/v1/sms/status``) and replies
    #: (``POST /api/v1/sms/replies``); empty disables both.
    status_secret: str = ""


@dataclasses.dataclass
class NodeConfig:
    #: Folder holding the SQLite database, the node keys and the SMS console log.
    data_dir: Path = Path("carnet-data")
    #: The school's display name.
    school_name: str = "École Carnet"
    #: The URL families type in their browser; signatures and links are built
    #: from it, never from the ``Host`` header.
    public_url: str = "http://127.0.0.1:8000"
    #: ``sqlite:///path`` or ``postgresql://user:pass@host/db``; empty means the
    #: SQLite file ``carnet.sqlite3`` in the data folder.
    database_url: str = ""
    #: Address and port ``carnet serve`` binds to.
    bind: str = "127.0.0.1:8000"
    #: Language of pages when the browser asks for none we have.
    default_locale: Literal["fr", "en"] = "fr"
    #: The school's time zone (IANA name): pages show times in it; storage keeps UTC.
    timezone: str = "Europe/Paris"
    #: Country calling code assumed for national phone numbers (``06 12 34 56 78``).
    default_country_code: str = "33"
    #: Days an access code stays valid after the teacher issues it.
    access_code_days: int = 14
    #: Minutes an SMS code stays valid.
    sms_code_minutes: int = 10
    #: Wrong entries allowed per SMS code before it is dead.
    sms_code_max_tries: int = 5
    #: SMS codes sent to one number per hour (each needs the right access code).
    sms_per_number_per_hour: int = 3
    #: Access-code or SMS-code failures allowed per client address per 15 minutes.
    failures_per_ip_per_15min: int = 20
    #: Failed passphrase logins allowed per login and client address per 15 minutes.
    login_failures_per_address_per_15min: int = 10
    #: Failed passphrase logins per account per hour (NIST 800-63B §5.2.2); past it,
    #: only addresses that already failed are refused, so strangers cannot lock anyone out.
    login_failures_per_account_per_hour: int = 100
    #: Hours a staff setup link stays valid.
    setup_link_hours: int = 72
    #: Days a session lives without use (idle) and at most (absolute).
    session_idle_days: int = 14
    session_absolute_days: int = 60
    #: PBKDF2-SHA256 iterations clients use to derive the login secret and the
    #: vault key from a passphrase; never below 600,000 (OWASP, DESIGN §4).
    kdf_iterations: int = 600_000
    #: Worker threads running storage calls and passphrase hashing off the loop.
    db_threads: int = 8
    #: Largest request body accepted, in bytes.
    max_request_bytes: int = 1_048_576
    #: Largest attachment (photo, video, audio, document), in bytes of ciphertext.
    max_attachment_bytes: int = 200_000_000
    #: Seconds a client has to send a request's line and headers once it connects (or
    #: after its previous answer), and the longest a connection may stay idle between
    #: requests; then the node closes it without an answer (Hypercorn's
    #: ``keep_alive_timeout``).  Cuts off "slowloris" clients that trickle headers.
    request_header_timeout: float = 5.0
    #: Seconds a request's body may take to arrive in full before the node answers
    #: 408 (Quart's ``BODY_TIMEOUT``).  An attachment part is at most
    #: ``max_request_bytes`` (1 MiB): 180 s lets a phone on a weak 2G/EDGE uplink
    #: (about 64 kbit/s) send one.  Raise it with ``max_request_bytes``.
    request_body_timeout: float = 180.0
    #: Run the background workers (texts, pushes, federation delivery, pulls,
    #: housekeeping) in this process.  ``carnet serve --no-workers`` turns them
    #: off for HTTP-only processes beside a ``carnet worker`` (PostgreSQL).
    run_workers: bool = True
    #: Messages (posts, comments, reactions, shares, chat messages, new
    #: conversations) one account may write per hour: far above what a person
    #: types, low enough that a stolen session cannot flood a class.
    messages_per_account_per_hour: int = 600
    #: Bytes of attachments one account may upload per 24 hours, and uploads it
    #: may have started and not yet attached at once.
    upload_bytes_per_account_per_day: int = 5_000_000_000
    uploads_in_progress_per_account: int = 30
    #: Federation transactions accepted from one peer node per minute (past it: 429
    #: with Retry-After, which NP/1 senders wait out).
    federation_transactions_per_peer_per_minute: int = 600
    #: Trust ``X-Forwarded-For`` from this many proxies in front of the node
    #: (0: use the socket address; rate limits key on the client address).
    trusted_proxies: int = 0
    #: Log level of the ``carnet`` loggers.
    log_level: str = "INFO"
    #: Days the audit log keeps an event (docs/security.md, "Audit log").
    audit_retention_days: int = 365
    #: Days after a family left every class before its accounts and what it wrote are erased.
    departed_family_retention_days: int = 92
    sms: SmsConfig = dataclasses.field(default_factory=SmsConfig)
    #: Federation (NP/1): where to connect to reach a peer's origin, when not at
    #: the origin itself (``{"https://ecole-b.example" = "http://10.0.0.5:8000"}``,
    #: or a fault-injecting proxy in tests).  Signatures still name the origin.
    federation_connect: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Multiplies federation retry delays (10 s … 1 h); tests shrink it, operators leave it at 1.
    federation_backoff_factor: float = 1.0

    @property
    def is_https(self) -> bool:
        return urlsplit(self.public_url).scheme == "https"

    @property
    def origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'carnet.sqlite3'}"

    def validate(self) -> None:
        """Raise ConfigError on the first invalid value."""
        parts = urlsplit(self.public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"public_url must be an http(s) URL, got {self.public_url!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError("public_url must be an origin without path, query or fragment")
        scheme = self.resolved_database_url.split(":", 1)[0]
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ConfigError("database_url must start with sqlite:// or postgresql://")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"timezone must be an IANA time zone like Europe/Paris, got {self.timezone!r}"
            ) from None
        if self.kdf_iterations < 600_000:
            raise ConfigError("kdf_iterations must be at least 600000")
        if not self.default_country_code.isdigit() or not 1 <= len(self.default_country_code) <= 3:
            raise ConfigError("default_country_code must be 1 to 3 digits, like 33")
        for name in (
            "access_code_days",
            "sms_code_minutes",
            "sms_code_max_tries",
            "sms_per_number_per_hour",
            "failures_per_ip_per_15min",
            "login_failures_per_account_per_hour",
            "login_failures_per_address_per_15min",
            "setup_link_hours",
            "session_idle_days",
            "session_absolute_days",
            "db_threads",
            "max_request_bytes",
            "max_attachment_bytes",
            "messages_per_account_per_hour",
            "upload_bytes_per_account_per_day",
            "uploads_in_progress_per_account",
            "federation_transactions_per_peer_per_minute",
            "audit_retention_days",
            "departed_family_retention_days",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive number")
        for name in ("request_header_timeout", "request_body_timeout"):
            if not 0 < getattr(self, name) <= 3600:
                raise ConfigError(f"{name} must be more than 0 and at most 3600 seconds")
        if not 0 < self.federation_backoff_factor <= 10:
            raise ConfigError("federation_backoff_factor must be between 0 and 10")
        for peer, url in self.federation_connect.items():
            for value in (peer, url):
                parts = urlsplit(value)
                if (
                    parts.scheme not in ("http", "https")
                    or not parts.netloc
                    or parts.path.strip("/")
                ):
                    raise ConfigError(
                        f"federation_connect maps origins to origins (scheme://host:port), got {value!r}"
                    )
        if self.sms.backend == "http" and not self.sms.http_url.startswith(("http://", "https://")):
            raise ConfigError("sms.http_url must be set to the provider URL for the http backend")


def _coerce(value: Any, target: Any, name: str) -> Any:
    """Convert a TOML or environment value to the field's declared type."""
    if dataclasses.is_dataclass(target):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name} must be a table")
        return _build(target, value, name + ".")
    origin = getattr(target, "__origin__", None)
    if origin is dict:
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigError(f"{name} must be a table of text values")
        return dict(value)
    if origin is Literal:
        if value not in target.__args__:
            allowed = ", ".join(map(str, target.__args__))
            raise ConfigError(f"{name} must be one of: {allowed}")
        return value
    try:
        if target is Path:
            return Path(value)
        if target is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if target in (int, float, str):
            return target(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: {exc}") from None
    raise ConfigError(f"{name}: unsupported type")


def _build(cls: Any, values: Mapping[str, Any], prefix: str = "") -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown setting {prefix}{sorted(unknown)[0]}")
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in values.items()}
    return cls(**kwargs)


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


#: Environment prefixes used by scripts/test and scripts/demo, never settings.
SCRIPT_PREFIXES = ("CARNET_TEST_", "CARNET_DEMO_", "CARNET_PG_")


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    if environ.get("DATABASE_URL"):
        layer["database_url"] = environ["DATABASE_URL"]
    for key, value in environ.items():
        if not key.startswith("CARNET_") or key == "CARNET_CONFIG":
            continue
        if key.startswith(SCRIPT_PREFIXES):
            continue
        path = key[len("CARNET_") :].lower().split("__")
        node = layer
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return layer


def load_config(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> NodeConfig:
    """Build the configuration from every layer and validate it.

    Args:
        overrides: values that win over everything else (tests, the CLI).
        environ: the environment to read; ``os.environ`` when omitted.

    Raises:
        ConfigError: a value is unknown or invalid.
    """
    env = os.environ if environ is None else environ
    overrides = dict(overrides or {})
    env_layer = _from_env(env)
    data_dir = overrides.get("data_dir") or env_layer.get("data_dir") or NodeConfig.data_dir
    config_file = Path(env.get("CARNET_CONFIG") or Path(data_dir) / "carnet.toml")
    layers: dict[str, Any] = {}
    if config_file.is_file():
        try:
            layers = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_file}: {exc}") from None
    layers = _merge(layers, env_layer)
    layers = _merge(layers, overrides)
    layers.setdefault("data_dir", str(data_dir))
    config: NodeConfig = _build(NodeConfig, layers)
    config.validate()
    return config


def dump_toml(values: Mapping[str, Any]) -> str:
    """Render a flat-or-one-level mapping as TOML (for ``carnet init``)."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in values.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables:
        lines.append(f"\n[{name}]")
        lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    """A bare key when TOML allows one, else a quoted one (origins: ``"https://…"``)."""
    if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key):
        return key
    return _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
