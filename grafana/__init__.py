"""Grafana dashboards as code (build.py) and the provisioning Grafana loads.

A build step for developers and tests; the services never import it.
"""
