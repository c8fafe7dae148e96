"""The domain error tree.  Services raise these; routes turn them into responses.

    CarnetError                 message (an English msgid, translated by the web layer) + params
    ├── Invalid        (400)    the input is malformed; ``field`` names the culprit
    ├── Unauthenticated (401)   no valid session, or wrong credentials
    ├── PermissionDenied (403)  authenticated, but this person may not do this
    ├── NotFound       (404)    no such thing, or not visible to this person
    ├── Conflict       (409)    the thing is in a state that forbids this (already used…)
    ├── Gone           (410)    expired or consumed (access code, SMS code, setup link)
    ├── RateLimited    (429)    too many tries; ``retry_after`` seconds
    └── Unreachable    (502)    another school's node did not answer, or answered badly

Messages never contain a phone number or an e-mail address.
"""

from __future__ import annotations

from typing import Any


def N_(message: str) -> str:
    """Mark a string for translation without translating it here (Babel keyword)."""
    return message


class CarnetError(Exception):
    status = 500
    code = "error"

    def __init__(self, message: str, *, field: str | None = None, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.params = params

    def __str__(self) -> str:
        """The English message with its values (logs, and errors told to other nodes)."""
        try:
            return self.message % self.params if self.params else self.message
        except (KeyError, TypeError, ValueError):
            return self.message


class Invalid(CarnetError):
    status = 400
    code = "invalid"


class Unauthenticated(CarnetError):
    status = 401
    code = "unauthenticated"


class PermissionDenied(CarnetError):
    status = 403
    code = "forbidden"


class NotFound(CarnetError):
    status = 404
    code = "not_found"


class Conflict(CarnetError):
    status = 409
    code = "conflict"


class Gone(CarnetError):
    status = 410
    code = "gone"


class RateLimited(CarnetError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **params: Any) -> None:
        super().__init__(message, **params)
        self.retry_after = retry_after


class Unreachable(CarnetError):
    status = 502
    code = "unreachable"
