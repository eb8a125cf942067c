"""Shared benchmark setup: scratch database, a hotel wired to partners, an ASGI request meter.

Used by bench/ingest.py and bench/ari.py (run them with the repository root on sys.path). The scratch database is created on the server
named by INNSYNC_BENCH_ADMIN_URL (default: local PostgreSQL, user postgres), migrated with
Alembic (db.migrate.upgrade) and dropped afterwards unless the caller keeps it.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import psycopg

ADMIN = os.environ.get("INNSYNC_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def isolate_settings() -> Path:
    """Point innsync's settings at a throw-away home and key (before importing the app)."""
    home = Path(tempfile.mkdtemp(prefix="innsync-bench-home-"))
    os.environ["INNSYNC_HOME"] = str(home)
    os.environ.setdefault("INNSYNC_SECRET_KEY", "bench-secret-key-" + secrets.token_hex(8))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    return home


def db_url(name: str) -> str:
    """libpq URL of database `name` on the benchmark server."""
    return ADMIN.rsplit("/", 1)[0] + "/" + name


def create_scratch_db(name: str) -> str:
    """(Re)create an empty database, point the app at it and migrate it; returns its URL."""
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    from db import migrate
    from db.engine import to_sqlalchemy_url
    from innsync.settings import get_settings

    url = to_sqlalchemy_url(db_url(name))
    os.environ["INNSYNC_DATABASE_URL"] = url
    get_settings.cache_clear()
    migrate.upgrade("head", url)
    return url


def drop_db(name: str) -> None:
    """Drop a scratch database (after disposing of the app's engine)."""
    from db.engine import get_engine

    get_engine().dispose()
    get_engine.cache_clear()
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Hotel:
    """Ids of what make_hotel created."""

    property_id: int
    room_types: dict[str, int]  # PMS code -> id
    rate_plans: dict[tuple[str, str], int]  # (room code, rate code) -> id
    channels: dict[str, int] = field(default_factory=dict)  # channel name -> id


def make_hotel(
    room_codes: list[str],
    rate_codes: list[str],
    *,
    units: int,
    start: date,
    days: int,
    endpoints: dict[str, str],
) -> Hotel:
    """A property with room types x rate plans, `days` of inventory and flat rates from `start`,
    and one enabled channel per endpoint (name -> simulator URL), mapped through the catalog."""
    from sqlalchemy import text

    from channels.base import ChannelConfig, ChannelName
    from channels.simulators.catalog import CATALOG
    from db.engine import session_scope
    from db.models import (
        Channel,
        ChannelRateMapping,
        ChannelRoomMapping,
        Property,
        RatePlan,
        RoomType,
    )
    from db.repositories.channels import seal_config

    with session_scope() as session:
        prop = Property(code="BENCH", name="Benchmark hotel", timezone="Europe/Lisbon", currency="EUR")
        session.add(prop)
        session.flush()
        hotel = Hotel(prop.id, {}, {})
        for code in room_codes:
            rt = RoomType(property_id=prop.id, code=code, name=code, total_units=units)
            session.add(rt)
            session.flush()
            hotel.room_types[code] = rt.id
            for rcode in rate_codes:
                rp = RatePlan(property_id=prop.id, room_type_id=rt.id, code=rcode, name=rcode)
                session.add(rp)
                session.flush()
                hotel.rate_plans[(code, rcode)] = rp.id
        params = {"s": start, "n": days - 1, "u": units, "p": prop.id}
        session.execute(
            text("""
                INSERT INTO inventory (room_type_id, date, total, sold, held)
                SELECT rt.id, CAST(:s AS date) + g, :u, 0, 0
                FROM room_types rt, generate_series(0, :n) g WHERE rt.property_id = :p
            """),
            params,
        )
        session.execute(
            text("""
                INSERT INTO rates (rate_plan_id, date, amount)
                SELECT rp.id, CAST(:s AS date) + g, 100
                FROM rate_plans rp, generate_series(0, :n) g WHERE rp.property_id = :p
            """),
            params,
        )
        for name, endpoint in endpoints.items():
            cat = CATALOG[ChannelName(name)]
            config = ChannelConfig.model_validate({
                "apiKey": "bench", "apiSecret": "bench-secret", "hotelId": cat["hotel_id"],
                "endpoint": endpoint,
            })
            encrypted, public = seal_config(config)
            ch = Channel(
                property_id=prop.id,
                name=f"{name} (bench)",
                channel_name=name,
                enabled=True,
                config_encrypted=encrypted,
                config_public=public,
            )
            session.add(ch)
            session.flush()
            hotel.channels[name] = ch.id
            for code, rt_id in hotel.room_types.items():
                room = cat["room_types"][code]
                session.add(
                    ChannelRoomMapping(channel_id=ch.id, room_type_id=rt_id, partner_room_code=room)
                )
                for rcode in rate_codes:
                    if rcode in cat["rate_plans"]:
                        session.add(
                            ChannelRateMapping(
                                channel_id=ch.id,
                                rate_plan_id=hotel.rate_plans[(code, rcode)],
                                partner_room_code=room,
                                partner_rate_code=cat["rate_plans"][rcode],
                            )
                        )
        session.flush()
    return hotel


class Meter:
    """ASGI middleware: requests, seconds inside the app and body bytes in/out, per method+path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.bytes_in: Counter[str] = Counter()
        self.bytes_out: Counter[str] = Counter()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        key = f"{scope['method']} {scope['path']}"

        async def metered_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                self.bytes_in[key] += len(message.get("body", b""))
            return message

        async def metered_send(message: Any) -> None:
            if message["type"] == "http.response.body":
                self.bytes_out[key] += len(message.get("body", b""))
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, metered_receive, metered_send)
        finally:
            self.seconds[key] += time.perf_counter() - start
            self.calls[key] += 1

    def reset(self) -> None:
        """Forget what was counted so far."""
        for counter in (self.calls, self.seconds, self.bytes_in, self.bytes_out):
            counter.clear()


@contextmanager
def prefect_server(kind: str) -> Iterator[str]:
    """A real Prefect server for the run; yields a description.

    PREFECT_API_URL set: that server. kind "pg": `prefect server start` on a scratch PostgreSQL
    database of the benchmark server (how `innsync up` runs it). kind "harness":
    `prefect_test_harness()` (Prefect's SQLite test server: much slower under load).
    """
    if os.environ.get("PREFECT_API_URL"):
        yield f"PREFECT_API_URL={os.environ['PREFECT_API_URL']}"
        return
    if kind == "harness":
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=90):
            yield "prefect_test_harness (SQLite)"
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    name = f"innsync_bench_prefect_{os.getpid()}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    home = Path(tempfile.mkdtemp(prefix="innsync-bench-prefect-"))
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": "postgresql+asyncpg://"
        + db_url(name).split("://", 1)[1],
    }
    env.pop("PREFECT_API_URL", None)
    log = open(home / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start, see {home / 'server.log'}")
            time.sleep(0.5)
        with temporary_settings(updates={PREFECT_API_URL: api}):
            yield "prefect server start (PostgreSQL database, subprocess)"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
