"""The bridge's HTTP routers, one module per concern (included by `alert_bridge.app`)."""

from alert_bridge.routes import health, notifications, pages, runbook, webhooks

ROUTERS = (webhooks.router, notifications.router, health.router, runbook.router, pages.router)
