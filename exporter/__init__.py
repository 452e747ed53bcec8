"""The dedicated exporter: host, PostgreSQL, business and Redis metrics for Prometheus.

One collector class per data source (`system`, `postgres`, `business`, `redis`), each
in its own module with the series it exports in its docstring. `scrape.Scraper` runs
them concurrently under the scrape deadline; `server` serves `/metrics`.
"""
