"""The TraceTrack app: FastAPI over PostgreSQL with a Redis cache, instrumented for Prometheus."""
