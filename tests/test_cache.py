"""The cache against a real redis-server: TTLs, failover to memory and back, warming."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.cache import PREFIX, Cache
from app.main import create_app
from tests.support.appkit import add_user, app_settings, auth, token
from tooling.procs import port_open, redis_process, wait_until


def backend_gauge(backend: str) -> float | None:
    return REGISTRY.get_sample_value("tracetrack_cache_backend", {"backend": backend})


def test_entries_expire_after_their_ttl_in_both_backends(redis_url: str) -> None:
    async def check(url: str | None) -> None:
        cache = Cache(url, ttl=1, memory_ttl=1)
        await cache.start()
        assert cache.backend == ("redis" if url else "memory")
        await cache.set("k", {"v": 1})
        assert await cache.get("k") == {"v": 1}
        assert await cache.get_raw("k") == b'{"v":1}'  # the bytes a response sends
        await asyncio.sleep(1.3)
        assert await cache.get("k") is None, cache.backend
        await cache.close()

    for url in (redis_url, None):
        asyncio.run(check(url))


def test_no_redis_configured_means_memory(tmp_path: Path) -> None:
    async def check() -> None:
        cache = Cache(None, ttl=60)
        await cache.start()
        assert cache.backend == "memory" and backend_gauge("memory") == 1
        await cache.set_many({"a": [1, 2], "b": None})
        assert await cache.get("a") == [1, 2]
        await cache.delete("a")
        assert await cache.get("a") is None

    asyncio.run(check())


def test_redis_down_fails_over_to_memory_and_comes_back(
    database_url: str, tmp_path: Path, redis_server
) -> None:
    proc, port = redis_server
    add_user(database_url, "dana", "dispatcher")
    settings = app_settings(database_url, tmp_path, redis_url=f"redis://127.0.0.1:{port}/0")
    app = create_app(settings)
    with TestClient(app) as client:
        h = auth(token(client, "dana"))
        assert (
            client.post(
                "/api/bags", json={"qr_id": "P1", "bag_type": "parent"}, headers=h
            ).status_code
            == 201
        )
        assert client.get("/api/bags/P1", headers=h).status_code == 200
        assert redis.Redis(port=port).exists(PREFIX + "bag:P1")  # really stored in Redis
        assert backend_gauge("redis") == 1 and backend_gauge("memory") == 0

        proc.stop()
        for _ in range(5):  # every request still succeeds while Redis is gone
            r = client.get("/api/bags/P1", headers=h)
            assert r.status_code == 200 and r.json()["qr_id"] == "P1"
        assert app.state.cache.backend == "memory"
        assert backend_gauge("memory") == 1 and backend_gauge("redis") == 0

        # A write during the outage; the stale Redis copy must not come back afterwards.
        client.post("/api/scans", json={"qr_id": "P1", "location": "Outage"}, headers=h)
        restarted = redis_process(tmp_path / "redis2", port).start()
        try:
            wait_until(lambda: port_open(port), 60, "redis restart")
            redis.Redis(port=port).set(PREFIX + "bag:P1", '{"stale": true}')

            def back_on_redis() -> bool:
                client.get("/api/bags/P1", headers=h)
                return app.state.cache.backend == "redis"

            wait_until(back_on_redis, 60, "failback to redis", interval=0.2)
            assert backend_gauge("redis") == 1 and backend_gauge("memory") == 0
            assert client.get("/api/bags/P1", headers=h).json()["location"] == "Outage"
        finally:
            restarted.stop()


def test_startup_warms_the_cache_with_the_newest_and_recently_scanned_bags(
    database_url: str, tmp_path: Path, redis_url: str
) -> None:
    add_user(database_url, "dana", "dispatcher")
    settings = app_settings(database_url, tmp_path, redis_url=redis_url, cache_warm_entries=1)
    with TestClient(create_app(settings)) as client:
        h = auth(token(client, "dana"))
        for qr in ("SCANNED", "COLD", "NEWEST"):
            client.post("/api/bags", json={"qr_id": qr, "bag_type": "parent"}, headers=h)
        client.post("/api/scans", json={"qr_id": "SCANNED", "location": "Dock"}, headers=h)
    redis.Redis.from_url(redis_url).flushall()
    with TestClient(create_app(settings)):
        r = redis.Redis.from_url(redis_url)
        assert r.exists(PREFIX + "bag:NEWEST") and r.exists(PREFIX + "bag:SCANNED")
        assert not r.exists(PREFIX + "bag:COLD")
        warmed = r.get(PREFIX + "bag:SCANNED")
        assert warmed is not None and b'"location":"Dock"' in warmed  # the bag as it is now


def test_an_app_without_redis_exports_no_redis_backend_series(
    database_url: str, tmp_path: Path
) -> None:
    """Otherwise the "cache fell back to memory" alert would fire for a Redis-less app."""
    import httpx

    from tests.support.appkit import start_app_process

    proc, port = start_app_process(tmp_path, database_url)
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        proc.stop()
    assert 'tracetrack_cache_backend{backend="memory"} 1.0' in text
    assert 'backend="redis"' not in text
