"""The SMS provider's callbacks: delivery reports (``POST /api/v1/sms/status``) and
the texts people send back (``POST /api/v1/sms/replies``: STOP, START).

The provider authenticates with the shared secret ``sms.status_secret`` in
``X-Carnet-Sms-Secret``; the routes are therefore exempt from CSRF (it never
carries a browser session) and disabled while no secret is configured.
"""

from __future__ import annotations

from typing import Any

from quart import current_app, jsonify, request

from node.api import Api, call
from node.errors import N_, Invalid, NotFound, PermissionDenied
from node.services import sms_outbox
from node.sms import SmsCallbackAuthError, SmsCallbackError, parse_reply, parse_status_callback


def register(api: Api) -> None:
    @api.operation(
        "POST",
        "/sms/status",
        summary="Delivery report from the SMS provider",
        auth="provider",
        tag="sms",
    )
    async def sms_status() -> Any:
        body = await request.get_data(as_text=False)
        assert isinstance(body, bytes)
        try:
            reference, status = parse_status_callback(
                current_app.config["CARNET"].sms, dict(request.headers), body
            )
        except SmsCallbackAuthError:
            raise PermissionDenied(
                N_("This delivery report is not signed with the shared secret.")
            ) from None
        except SmsCallbackError:
            raise Invalid(N_("This delivery report is malformed.")) from None
        if not await call(sms_outbox.apply_status_callback, reference, status.value):
            raise NotFound(N_("No text has this reference."))
        return jsonify({"ok": True})

    @api.operation(
        "POST",
        "/sms/replies",
        summary="A text a person sent back (STOP, START), from the SMS provider",
        auth="provider",
        tag="sms",
    )
    async def sms_reply() -> Any:
        body = await request.get_data(as_text=False)
        assert isinstance(body, bytes)
        try:
            number, keyword = parse_reply(
                current_app.config["CARNET"].sms, dict(request.headers), body
            )
        except SmsCallbackAuthError:
            raise PermissionDenied(N_("This reply is not signed with the shared secret.")) from None
        except SmsCallbackError:
            raise Invalid(N_("This reply is malformed.")) from None
        await call(sms_outbox.apply_reply, number, keyword)
        return jsonify({"ok": True, "keyword": keyword})
