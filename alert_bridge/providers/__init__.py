"""One provider per channel behind `Provider.send`, chosen from a map (not a switch)."""

from __future__ import annotations

from collections.abc import Callable

from alert_bridge.providers.base import PermanentError, Provider, TransientError
from alert_bridge.providers.log import LogProvider
from alert_bridge.settings import BridgeSettings


def build_providers(settings: BridgeSettings) -> dict[str, Provider]:
    """A disabled channel gets the log provider: it records what it would send."""
    from alert_bridge.providers.email import EmailProvider
    from alert_bridge.providers.sms import SmsProvider
    from alert_bridge.providers.webhook import WebhookProvider

    factories: dict[str, tuple[bool, Callable[[BridgeSettings], Provider], str]] = {
        "email": (settings.enable_email_alerts, EmailProvider, "ENABLE_EMAIL_ALERTS"),
        "sms": (settings.enable_sms_alerts, SmsProvider, "ENABLE_SMS_ALERTS"),
        "webhook": (settings.enable_webhook_alerts, WebhookProvider, "ENABLE_WEBHOOK_ALERTS"),
    }
    providers: dict[str, Provider] = {}
    for channel, (enabled, factory, flag) in factories.items():
        providers[channel] = factory(settings) if enabled else LogProvider(channel, flag)
    return providers


__all__ = ["PermanentError", "Provider", "TransientError", "build_providers"]
