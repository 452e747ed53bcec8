"""Email over SMTP (smtplib): STARTTLS or implicit TLS, login, text and HTML parts."""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from alert_bridge.config import Recipient
from alert_bridge.messages import Message, email_html, email_subject, email_text
from alert_bridge.providers.base import PermanentError, TransientError
from alert_bridge.settings import BridgeSettings
from common import smtp


def _by_code(code: int, what: str) -> Exception:
    # RFC 5321: 4yz is a transient negative completion, 5yz permanent.
    cls = TransientError if 400 <= code < 500 else PermanentError
    return cls(f"SMTP {code} {what}")


class EmailProvider:
    outcome = "sent"

    def __init__(self, settings: BridgeSettings) -> None:
        self.settings = settings
        self.host = settings.smtp_server
        self.port = settings.smtp_port
        self.sender = settings.alert_sender_email

    def build(self, recipient: Recipient, message: Message) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = email_subject(message)
        msg["From"] = self.sender
        msg["To"] = recipient.address
        msg["Date"] = formatdate(localtime=False)
        # Stable per (notification, recipient): if a crash makes us send twice, mail
        # systems that deduplicate on Message-ID show it once.
        rid = hashlib.sha256(recipient.address.encode()).hexdigest()[:10]
        msg["Message-ID"] = f"<{message.key[:32]}.{rid}@tracetrack-alert-bridge>"
        msg["X-TraceTrack-Notification"] = message.key
        msg.set_content(email_text(message))
        msg.add_alternative(email_html(message), subtype="html")
        return msg

    def send(self, recipient: Recipient, message: Message) -> str | None:
        msg = self.build(recipient, message)
        try:
            conn = smtp.connect(self.settings)
            try:
                conn.send_message(msg)
            finally:
                try:
                    conn.quit()
                except (smtplib.SMTPException, OSError):
                    conn.close()
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise _by_code(code, f"recipient refused: {text!r}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(f"SMTP server does not support it: {exc}") from None
        except smtplib.SMTPResponseException as exc:  # sender/data/auth/connect replies
            raise _by_code(exc.smtp_code, f"{type(exc).__name__}: {exc.smtp_error!r}") from None
        except ssl.SSLCertVerificationError as exc:
            raise PermanentError(f"TLS certificate of {self.host} not trusted: {exc}") from None
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, refused, timeouts
            raise TransientError(
                f"SMTP {self.host}:{self.port} unreachable: {type(exc).__name__}: {exc}"
            ) from None
        return str(msg["Message-ID"])
