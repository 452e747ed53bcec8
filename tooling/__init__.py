"""Builds and runs the stack: process helpers, stack configuration, the rules generator,
generated-file checks and throwaway PostgreSQL clusters.

Used by `tracetrack up`, the tests, the benches and the generators; the services
(app, exporter, alert_bridge) never import it at run time. What they share lives in `common/`.
"""
