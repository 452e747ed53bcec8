"""The alert bridge: Alertmanager webhooks in; email, SMS and Slack/Discord/JSON
webhooks out, through a durable outbox. See docs/alert-bridge.md."""
