"""RFC 9421 HTTP Message Signatures, NP/1's Ed25519 profile. Sans-IO.

Every node-to-node request is signed by the sending node's key. This module
builds signature bases, signs, and verifies; it never opens a socket, reads a
clock or looks at a ``Host`` header. The caller supplies:

* ``target_uri``: the URL of the request *as this node is configured to be
  reached* (its public URL + path + query), never one rebuilt from ``Host``
  or ``X-Forwarded-*``: a request captured at one node then fails at another;
* ``now``: Unix seconds, so the ±300 s window is testable and injectable;
* ``lookup_key``: keyid → Ed25519 key, or ``None`` if the peer has no such
  key. It raises :class:`~federation.errors.NotAPeer` for an origin that is
  not allow-listed, *before* it would fetch anything.

The NP/1 profile on top of RFC 9421 (see ``docs/protocol/np1.md`` §3):

* covered components include ``@method`` and ``@target-uri``, and
  ``content-digest`` whenever the request has a body or uses POST/PUT/PATCH;
* parameters: ``created`` (required, within ±300 s), ``keyid`` (required),
  ``alg="ed25519"`` (required), ``tag="np1"`` (required; it selects the
  signature), optional ``expires`` and ``nonce``, nothing else;
* exactly one signature carries ``tag="np1"``; signatures with other tags
  (for example added by a proxy) are ignored.

For async key fetching, split :func:`verify_request` in two: call
:func:`parse_request_signature` (syntax and profile; gives the keyid), do the
peer check and fetch, then :func:`verify_request` with a lookup that returns
what was fetched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import nacl.exceptions
import nacl.signing

from federation import sfv
from federation.digest import content_digest, verify_content_digest
from federation.encoding import check_url
from federation.errors import (
    BadSignature,
    DigestError,
    DigestMismatch,
    EncodingError,
    SignatureMalformed,
    SignatureMissing,
    SignatureStale,
    StructuredFieldError,
    UnknownKey,
)
from federation.keys import key_id_origin

ALGORITHM = "ed25519"
TAG = "np1"
LABEL = "np"
"""Label NP/1 senders use; verifiers select by ``tag``, never by label."""
MAX_SKEW = 300
"""Seconds ``created`` may differ from the verifier's clock, either way."""
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_NONCE_LENGTH = 128

Headers = Mapping[str, str] | Iterable[tuple[str, str]]
KeyLookup = Callable[[str], nacl.signing.VerifyKey | None]

_METHOD_RE = re.compile(r"[A-Z]{1,20}")
_FIELD_NAME_RE = re.compile(r"[a-z0-9!#$%&'*+\-.^_`|~]+")
_DERIVED = frozenset(
    {"@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query"}
)
_PARAM_TYPES: dict[str, type] = {
    "created": int,
    "expires": int,
    "keyid": str,
    "alg": str,
    "nonce": str,
    "tag": str,
}


@dataclass(frozen=True)
class SignatureParams:
    """One member of ``Signature-Input``: covered components and parameters, in order."""

    components: tuple[str, ...]
    params: Mapping[str, int | str]

    def to_member(self) -> sfv.InnerList:
        """The structured-field inner list these parameters are written as."""
        return sfv.InnerList(tuple(sfv.Item(name) for name in self.components), dict(self.params))

    def serialize(self) -> str:
        """The ``@signature-params`` value (also the ``Signature-Input`` member value)."""
        return sfv.serialize_member(self.to_member())

    def get_int(self, name: str) -> int | None:
        value = self.params.get(name)
        return value if isinstance(value, int) else None

    def get_str(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ParsedSignature:
    """The NP/1 signature of a request, parsed and profile-checked but not verified."""

    label: str
    params: SignatureParams
    signature: bytes
    keyid: str
    key_origin: str
    created: int
    expires: int | None
    nonce: str | None


@dataclass(frozen=True)
class VerifiedSignature:
    """What a verified request proves: who signed it, when, and what it covers."""

    keyid: str
    key_origin: str
    created: int
    expires: int | None
    nonce: str | None
    components: tuple[str, ...]


def _field_lines(headers: Headers) -> dict[str, list[str]]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    lines: dict[str, list[str]] = {}
    for name, value in pairs:
        lines.setdefault(name.lower(), []).append(value.strip(" \t"))
    return lines


def _field(lines: Mapping[str, list[str]], name: str) -> str | None:
    # RFC 9421 §2.1: repeated field lines are joined with ", " in order.
    values = lines.get(name)
    return None if values is None else ", ".join(values)


def _component_value(
    name: str, method: str, target_uri: str, lines: Mapping[str, list[str]]
) -> str:
    if name.startswith("@"):
        if name not in _DERIVED:
            raise SignatureMalformed(f"covered component {name!r} is not supported")
        if name == "@method":
            return method
        if name == "@target-uri":
            return target_uri
        parts = urlsplit(target_uri)
        if name == "@scheme":
            return parts.scheme.lower()
        if name == "@authority":
            host = (parts.hostname or "").lower()
            port = parts.port
            default = {"http": 80, "https": 443}.get(parts.scheme.lower())
            return host if port is None or port == default else f"{host}:{port}"
        path = parts.path or "/"
        if name == "@path":
            return path
        if name == "@query":
            return "?" + parts.query
        return path + ("?" + parts.query if parts.query else "")  # @request-target
    if _FIELD_NAME_RE.fullmatch(name) is None:
        raise SignatureMalformed(f"covered component {name!r} is not a lower-case field name")
    value = _field(lines, name)
    if value is None:
        raise SignatureMalformed(f"covered header field {name!r} is absent from the request")
    return value


def signature_base(
    *, method: str, target_uri: str, headers: Headers, params: SignatureParams
) -> bytes:
    """Build the RFC 9421 §2.5 signature base for a request.

    Supports the derived components ``@method @target-uri @authority @scheme
    @request-target @path @query`` and plain header fields, without
    component parameters.

    Raises:
        SignatureMalformed: For an unsupported, duplicated or absent component,
            or a value with characters a signature base cannot hold.
    """
    lines = _field_lines(headers)
    out = []
    for name in params.components:
        value = _component_value(name, method, target_uri, lines)
        if not value.isascii() or any(ch in value for ch in "\r\n") or not value.isprintable():
            raise SignatureMalformed(
                f"component {name!r} has characters a signature base cannot hold"
            )
        out.append(f'"{name}": {value}')
    out.append(f'"@signature-params": {params.serialize()}')
    return "\n".join(out).encode("ascii")


def _check_request_line(method: str, target_uri: str) -> None:
    if _METHOD_RE.fullmatch(method) is None:
        raise ValueError(f"method {method!r} must be an upper-case token")
    try:
        check_url(target_uri, what="target URI")
    except EncodingError as exc:
        raise ValueError(str(exc)) from None
    if "#" in target_uri:
        raise ValueError("the target URI has no fragment")


def sign_request(
    *,
    method: str,
    target_uri: str,
    body: bytes | None,
    signing_key: nacl.signing.SigningKey,
    keyid: str,
    created: int,
    expires: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Sign a request with the NP/1 profile.

    Args:
        method: Upper-case HTTP method.
        target_uri: The full URL the request is sent to (peer's public URL + path + query).
        body: The exact body bytes, or ``None`` for a request without content.
            With a body (even empty) the request carries and signs ``Content-Digest``.
        signing_key: The node's current Ed25519 key.
        keyid: Its key id, ``{origin}/.well-known/carnet-node#{name}``.
        created: Unix seconds, taken just before sending (not when queued).
        expires: Optional Unix seconds after which the signature is refused.
        nonce: Optional unique string, for receivers that keep a replay cache.

    Returns:
        The headers to add: ``Content-Digest`` (with a body), ``Signature-Input``
        and ``Signature``.
    """
    _check_request_line(method, target_uri)
    key_id_origin(keyid)
    if body is None and method in BODY_METHODS:
        raise ValueError(f"{method} requests carry a body (pass b'' for an empty one)")
    headers: dict[str, str] = {}
    components = ["@method", "@target-uri"]
    if body is not None:
        headers["Content-Digest"] = content_digest(body)
        components.append("content-digest")
    params: dict[str, int | str] = {"created": created, "keyid": keyid, "alg": ALGORITHM}
    if expires is not None:
        params["expires"] = expires
    if nonce is not None:
        params["nonce"] = nonce
    params["tag"] = TAG
    sig_params = SignatureParams(tuple(components), params)
    base = signature_base(method=method, target_uri=target_uri, headers=headers, params=sig_params)
    signature = signing_key.sign(base).signature
    headers["Signature-Input"] = sfv.serialize_dictionary({LABEL: sig_params.to_member()})
    headers["Signature"] = sfv.serialize_dictionary({LABEL: sfv.Item(signature)})
    return headers


def parse_signature_fields(
    signature_input: str, signature: str
) -> dict[str, tuple[SignatureParams, bytes]]:
    """Parse ``Signature-Input`` and ``Signature`` strictly (RFC 9421 §4).

    Returns:
        ``{label: (params, signature bytes)}`` for every label.

    Raises:
        SignatureMalformed: On a structured-field error, a repeated label, labels
            that differ between the two fields, or members of the wrong type.
    """
    try:
        inputs = sfv.parse_dictionary(signature_input)
        signatures = sfv.parse_dictionary(signature)
    except StructuredFieldError as exc:
        raise SignatureMalformed(f"signature headers do not parse: {exc}") from None
    if not inputs or inputs.keys() != signatures.keys():
        raise SignatureMalformed("Signature-Input and Signature must name the same labels")
    result = {}
    for label, member in inputs.items():
        sig = signatures[label]
        if not isinstance(sig, sfv.Item) or not isinstance(sig.value, bytes) or sig.params:
            raise SignatureMalformed(f"Signature member {label!r} must be a byte sequence")
        if not isinstance(member, sfv.InnerList):
            raise SignatureMalformed(f"Signature-Input member {label!r} must be an inner list")
        names = []
        for item in member.items:
            if type(item.value) is not str or item.params:
                raise SignatureMalformed(
                    "covered components must be plain strings without parameters"
                )
            names.append(item.value)
        if len(set(names)) != len(names) or "@signature-params" in names:
            raise SignatureMalformed("a covered component is repeated or reserved")
        for name, value in member.params.items():
            expected = _PARAM_TYPES.get(name)
            if expected is None:
                raise SignatureMalformed(f"signature parameter {name!r} is not allowed")
            if type(value) is not expected:
                raise SignatureMalformed(
                    f"signature parameter {name!r} must be a {expected.__name__}"
                )
        params = {
            name: value for name, value in member.params.items() if isinstance(value, int | str)
        }
        result[label] = (SignatureParams(tuple(names), params), sig.value)
    return result


def parse_request_signature(*, method: str, headers: Headers, body: bytes) -> ParsedSignature:
    """Find the NP/1 signature of a request and check it against the profile.

    Nothing here needs a key or a clock: the inbox calls it first, then checks
    that ``key_origin`` is a peer before fetching any key.

    Raises:
        SignatureMissing: No signature headers, or no member with ``tag="np1"``.
        SignatureMalformed: Anything else wrong with the headers or the profile.
    """
    lines = _field_lines(headers)
    signature_input = _field(lines, "signature-input")
    signature = _field(lines, "signature")
    if signature_input is None or signature is None:
        raise SignatureMissing("the request has no Signature-Input and Signature headers")
    found = [
        (label, params, sig)
        for label, (params, sig) in parse_signature_fields(signature_input, signature).items()
        if params.params.get("tag") == TAG
    ]
    if not found:
        raise SignatureMissing(f'the request has no signature with tag="{TAG}"')
    if len(found) > 1:
        raise SignatureMalformed(f'the request has {len(found)} signatures with tag="{TAG}"')
    label, params, sig = found[0]
    if params.get_str("alg") != ALGORITHM:
        raise SignatureMalformed(f'the NP/1 signature must have alg="{ALGORITHM}"')
    keyid, created = params.get_str("keyid"), params.get_int("created")
    if keyid is None or created is None:
        raise SignatureMalformed("the NP/1 signature needs both keyid and created")
    try:
        origin = key_id_origin(keyid)
    except EncodingError as exc:
        raise SignatureMalformed(str(exc)) from None
    nonce = params.get_str("nonce")
    if nonce is not None and not 0 < len(nonce) <= MAX_NONCE_LENGTH:
        raise SignatureMalformed(f"nonce must be 1-{MAX_NONCE_LENGTH} characters")
    required = ["@method", "@target-uri"]
    if body or method in BODY_METHODS:
        required.append("content-digest")
    missing = [name for name in required if name not in params.components]
    if missing:
        raise SignatureMalformed(f"the NP/1 signature must cover {', '.join(missing)}")
    if len(sig) != 64:
        raise SignatureMalformed("an Ed25519 signature is 64 bytes")
    expires = params.get_int("expires")
    return ParsedSignature(label, params, sig, keyid, origin, created, expires, nonce)


def check_freshness(parsed: ParsedSignature, *, now: int, max_skew: int = MAX_SKEW) -> None:
    """Refuse a signature created outside ``now ± max_skew`` or already expired.

    Raises:
        SignatureStale: With ``server_time=now`` for the response body.
    """
    if parsed.created > now + max_skew:
        raise SignatureStale(
            f"signature created {parsed.created - now} s in the future (allowed: {max_skew} s); "
            "check the sending node's clock (NTP)",
            now,
        )
    if parsed.created < now - max_skew:
        raise SignatureStale(
            f"signature created {now - parsed.created} s ago (allowed: {max_skew} s); "
            "sign at send time and check the sending node's clock (NTP)",
            now,
        )
    if parsed.expires is not None and (
        parsed.expires < parsed.created or parsed.expires < now - max_skew
    ):
        raise SignatureStale("signature has expired", now)


def verify_signature(
    *,
    method: str,
    target_uri: str,
    headers: Headers,
    params: SignatureParams,
    signature: bytes,
    key: nacl.signing.VerifyKey,
) -> None:
    """Verify one Ed25519 signature over the rebuilt base (RFC 9421 §3.2, no profile).

    Raises:
        SignatureMalformed: If the base cannot be built.
        BadSignature: If the signature does not verify.
    """
    base = signature_base(method=method, target_uri=target_uri, headers=headers, params=params)
    try:
        key.verify(base, signature)
    except nacl.exceptions.BadSignatureError:
        raise BadSignature(
            "signature does not verify (tampered, wrong key, or signed for another method or URL)"
        ) from None


def verify_request(
    *,
    method: str,
    target_uri: str,
    headers: Headers,
    body: bytes,
    now: int,
    lookup_key: KeyLookup,
    max_skew: int = MAX_SKEW,
) -> VerifiedSignature:
    """Verify an incoming request against the NP/1 profile.

    Order (cheap checks first, and no key lookup for a malformed request):
    profile → ``lookup_key`` (peer check) → clock window → Content-Digest →
    Ed25519 signature.

    Args:
        method: The request method as received.
        target_uri: This node's public URL + the request's path and query.
        headers: The request headers, as a mapping or as (name, value) lines.
        body: The raw body bytes as received.
        now: The verifier's clock, Unix seconds.
        lookup_key: keyid → key; returns ``None`` for an unknown key and raises
            :class:`~federation.errors.NotAPeer` for a non-peer origin.
        max_skew: Allowed clock difference in seconds.

    Returns:
        The verified key id, its origin, ``created``, ``expires``, ``nonce``
        and the covered components.

    Raises:
        SignatureError: One of its subclasses, each with a ``reason``.
    """
    parsed = parse_request_signature(method=method, headers=headers, body=body)
    key = lookup_key(parsed.keyid)
    if key is None:
        raise UnknownKey(f"key {parsed.keyid} is not a current key of {parsed.key_origin}")
    check_freshness(parsed, now=now, max_skew=max_skew)
    if "content-digest" in parsed.params.components:
        digest = _field(_field_lines(headers), "content-digest")
        if digest is None:
            raise DigestMismatch("the signature covers Content-Digest but the header is absent")
        try:
            verify_content_digest(digest, body)
        except DigestError as exc:
            raise DigestMismatch(str(exc)) from None
    verify_signature(
        method=method,
        target_uri=target_uri,
        headers=headers,
        params=parsed.params,
        signature=parsed.signature,
        key=key,
    )
    return VerifiedSignature(
        parsed.keyid,
        parsed.key_origin,
        parsed.created,
        parsed.expires,
        parsed.nonce,
        parsed.params.components,
    )
