"""SMS through the `twilio` SDK (Messages API), optionally at TWILIO_API_BASE_URL."""

from __future__ import annotations

import logging
import threading
from typing import Any

import requests

from alert_bridge.budget import DIGEST
from alert_bridge.config import Recipient
from alert_bridge.messages import Message, sms_digest, sms_text
from alert_bridge.providers.base import PermanentError, TransientError
from alert_bridge.settings import BridgeSettings

# The SDK logs request headers at INFO; keep it quiet so credentials never reach a log.
logging.getLogger("twilio").setLevel(logging.WARNING)


class SmsProvider:
    outcome = "sent"

    def __init__(self, settings: BridgeSettings) -> None:
        if not (
            settings.twilio_account_sid
            and settings.twilio_auth_token
            and settings.twilio_from_number
        ):
            raise ValueError(
                "ENABLE_SMS_ALERTS needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN "
                "and TWILIO_FROM_NUMBER"
            )
        self.sid = settings.twilio_account_sid
        self.token = settings.twilio_auth_token
        self.from_number = settings.twilio_from_number
        self.base_url = settings.twilio_api_base_url
        self.timeout = settings.twilio_timeout_seconds
        self.budget = settings.bridge_sms_budget
        self.window_minutes = settings.bridge_sms_budget_window_minutes
        self._local = threading.local()  # one SDK client (and HTTP session) per worker thread

    def client(self) -> Any:  # twilio.rest.Client (the SDK is imported lazily)
        client = getattr(self._local, "client", None)
        if client is None:
            from twilio.http.http_client import TwilioHttpClient
            from twilio.rest import Client

            client = Client(
                self.sid,
                self.token.get_secret_value(),
                http_client=TwilioHttpClient(timeout=self.timeout),
            )
            if self.base_url:
                # Every Messages call goes through the `api` domain's base URL.
                client.api.base_url = self.base_url.rstrip("/")
            self._local.client = client
        return client

    def text(self, recipient: Recipient, message: Message) -> str:
        if recipient.format == DIGEST:  # this phone's SMS budget is spent
            return sms_digest(message, self.budget, self.window_minutes)
        return sms_text(message)

    def send(self, recipient: Recipient, message: Message) -> str | None:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        try:
            sent = self.client().messages.create(
                to=recipient.address,
                from_=self.from_number,
                body=self.text(recipient, message),
            )
        except TwilioRestException as exc:
            what = f"Twilio HTTP {exc.status} code {exc.code}: {exc.msg}"
            if exc.status == 429 or exc.status >= 500:
                raise TransientError(what) from None
            raise PermanentError(what) from None
        except (requests.RequestException, TwilioException, OSError) as exc:
            raise TransientError(f"Twilio unreachable: {type(exc).__name__}") from None
        return str(sent.sid)
