"""Phone numbers: normalization to E.164 and the masked form shown to people.

Pure functions, no I/O.  The node keeps numbers in E.164 (``+33612345678``);
everyone, teachers included once the invitation is sent, sees only the
masked form ``•• •• •• •• 78``.
"""

from __future__ import annotations

import re
import unicodedata

from node.errors import N_, Invalid

_SEPARATORS = re.compile(r"[\s.\-()/\u00a0\u202f]")

#: Country codes of satellite, international-network and shared-cost ranges
#: that SMS pumping fraud abuses; a school family never needs them.
BLOCKED_PREFIXES = ("+881", "+882", "+883", "+979", "+808", "+870", "+888")


def normalize_phone(raw: str, default_country_code: str = "33") -> str:
    """Turn what a person typed into E.164, or raise Invalid with a clear message.

    Accepts spaces, dots, dashes and brackets; ``00`` or ``+`` international
    prefixes; and national numbers starting with a single ``0`` (the
    default country code then applies).  Full-width digits are folded.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise Invalid(N_("Enter a phone number."), field="phone")
    if len(raw) > 40:
        raise Invalid(N_("This phone number is too long."), field="phone")
    text = unicodedata.normalize("NFKC", raw).strip()
    # "+33 (0)6 12 …": the bracketed trunk zero is dialled only inside the country.
    text = text.replace("(0)", "")
    text = _SEPARATORS.sub("", text)
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    elif text.startswith("0"):
        digits = default_country_code + text[1:]
    else:
        raise Invalid(
            N_(
                "Write the number with its country code (+33 6 12 34 56 78) or as a national number starting with 0."
            ),
            field="phone",
        )
    if not digits.isascii() or not digits.isdigit():
        raise Invalid(N_("A phone number contains only digits."), field="phone")
    if not 8 <= len(digits) <= 15 or digits.startswith("0"):
        raise Invalid(N_("This is not a valid phone number."), field="phone")
    number = "+" + digits
    if number.startswith(BLOCKED_PREFIXES):
        raise Invalid(N_("Numbers in this range cannot receive Carnet texts."), field="phone")
    return number


def mask_phone(number: str | None) -> str:
    """``•• •• •• •• 78``: enough for a person to recognize their own number, nothing more."""
    if not number:
        return ""
    return "•• •• •• •• " + number[-2:]


def mask_email(address: str | None) -> str:
    """``c•••@e•••`` for e-mail addresses shown next to a name."""
    if not address or "@" not in address:
        return ""
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain[:1]}•••"
