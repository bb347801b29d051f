"""A stand-in for Twilio's Conversations REST API, driven by Twilio's own OpenAPI spec.

    standin = ConversationsStandIn(account_sid="AC" + "0" * 32, auth_token="test-auth-token")
    client.conversations.base_url = standin.start()   # "http://127.0.0.1:PORT"

The vendored spec decides which paths, methods and parameters exist and which properties every
response carries. Conversations, Participants and Messages under /v1/Conversations are kept in
memory; other operations in the spec answer 501 in Twilio's error shape.
"""

from standins.twilio.dispatch import RecordedRequest
from standins.twilio.errors import TwilioApiError
from standins.twilio.spec import load_spec
from standins.twilio.standin import ConversationsStandIn

__all__ = ["ConversationsStandIn", "RecordedRequest", "TwilioApiError", "load_spec"]
