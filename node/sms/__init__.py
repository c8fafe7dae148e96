"""SMS gateway: sends texts to phone numbers and reads the provider's delivery reports.

Layer rule: this package does I/O for SMS only.  It knows nothing of accounts,
families or the database; callers pass a text, an E.164 number and their own
message reference, and get an :class:`SmsResult` back.  Deciding *whether* a
text may be sent (pre-registered numbers, rate limits, codes) is the caller's job.

Backends:

* ``console`` (:mod:`node.sms.console`): logs the text with a masked number and
  appends it to ``sms-outbox.jsonl`` in the data folder; that file plays the
  phone in development, the demo and tests (:func:`read_console_outbox`).
* ``http`` (:mod:`node.sms.http`): JSON POST to a provider, with retries.
"""

from node.sms.console import OUTBOX_NAME, ConsoleSmsGateway, read_console_outbox
from node.sms.gateway import (
    SmsCallbackAuthError,
    SmsCallbackError,
    SmsGateway,
    SmsResult,
    SmsStatus,
    check_e164,
    make_gateway,
    mask_number,
    parse_reply,
    parse_status_callback,
)
from node.sms.http import HttpSmsGateway

__all__ = [
    "OUTBOX_NAME",
    "ConsoleSmsGateway",
    "HttpSmsGateway",
    "SmsCallbackAuthError",
    "SmsCallbackError",
    "SmsGateway",
    "SmsResult",
    "SmsStatus",
    "check_e164",
    "make_gateway",
    "mask_number",
    "parse_reply",
    "parse_status_callback",
    "read_console_outbox",
]
