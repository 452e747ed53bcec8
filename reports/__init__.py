"""Daily and weekly reports: figures from Prometheus and the alert bridge's store,
charts drawn with matplotlib, written as HTML, PDF and JSON, and mailed on schedule.

A package of its own: it imports only `common/` and talks to Prometheus over its
HTTP API and to the bridge's store over its database URL.
"""
