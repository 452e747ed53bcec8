"""Who TraceTrack's alerts go to (docs/architecture.md §4).

The alert bridge reads this file at startup (path: ALERT_CONFIG_FILE, default this
one); `tracetrack bridge check-config` validates it without starting anything.

Channel matrix: critical -> SMS + email + webhook; warning -> email + webhook;
info -> email only. A channel sends only when its switch is on
(ENABLE_EMAIL_ALERTS, ENABLE_SMS_ALERTS, ENABLE_WEBHOOK_ALERTS); otherwise the
bridge logs what it would send and keeps it in its store - which is what the
placeholder recipients below are for on a fresh `make up`.

Entries:
- email: addresses;
- sms: E.164 numbers ('+' and country code, digits only), critical only;
- reports: email addresses per report kind ('daily', 'weekly'), read by the reporter;
- webhook: a URL (hooks.slack.com -> Slack blocks, discord.com -> Discord embeds,
  anything else -> plain JSON) or {'url': ..., 'format': 'slack' | 'discord' | 'json'}.
"""

ALERT_RECIPIENTS = {
    "email": {
        "critical": ["admin@example.com", "ops-team@example.com"],
        "warning": ["tech-lead@example.com"],
        "info": ["monitoring@example.com"],
    },
    "sms": {
        # 555-01xx numbers are reserved for fiction: replace with real on-call phones.
        "critical": ["+15555550100", "+15555550101"],
    },
    "webhook": {
        "critical": ["https://hooks.slack.com/services/YOUR/WEBHOOK/URL"],
        "warning": ["https://discord.com/api/webhooks/YOUR/WEBHOOK"],
    },
    # `tracetrack reporter` mails the daily report at 08:00 and the weekly one on
    # Mondays at 08:00 (TRACETRACK_TIMEZONE) to these addresses.
    "reports": {
        "daily": ["ops-team@example.com"],
        "weekly": ["ops-team@example.com", "tech-lead@example.com"],
    },
}
