"""/callbacks/outgoing-conversation: which Twilio number a rep's new conversation comes from."""

from __future__ import annotations

from contacts.model import whatsapp_address
from contacts.phones import to_e164
from handlers.base import Params, Reply, Services, dispatch
from service.errors import Forbidden, Unprocessable


def handle(params: Params, services: Services) -> Reply:
    """Serve one outgoing-conversation callback, chosen by `Location`."""
    return dispatch(params, services, {"GetProxyAddress": proxy_address})


def proxy_address(params: Params, services: Services) -> Reply:
    """The rep's own number (PROXY_NUMBERS) or the team's, with `whatsapp:` for WhatsApp."""
    settings = services.settings
    worker = params.text("Worker", max_length=256) or ""
    channel = params.required("ChannelType", max_length=32).lower()
    if channel not in ("sms", "whatsapp"):
        raise Unprocessable(f"ChannelType {channel!r} has no proxy number", field="ChannelType")
    personal = {k.strip().casefold(): v for k, v in settings.proxy_numbers.items()}
    shared, setting = (
        (settings.twilio_sms_number, "TWILIO_SMS_NUMBER")
        if channel == "sms"
        else (settings.twilio_whatsapp_number, "TWILIO_WHATSAPP_NUMBER")
    )
    number = personal.get(worker.strip().casefold()) or shared
    if not number:
        raise Forbidden(f"no Twilio number for {channel}: set {setting} (or PROXY_NUMBERS)")
    e164 = to_e164(number, settings.default_phone_region) or number
    return Reply({"proxy_address": e164 if channel == "sms" else whatsapp_address(e164)})
