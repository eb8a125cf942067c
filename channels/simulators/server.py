"""Build partner simulator apps and serve them: `innsync simulate`, or a loopback thread in tests.

Ports: with `--channel all` each partner gets its own port, consecutive from `--port` in this
order: booking.com, agoda, expedia, airbnb (8100, 8101, 8102, 8103 by default). Point an
adapter at one with `ChannelConfig(endpoint="http://127.0.0.1:8100")`.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
import uvicorn
from fastapi import FastAPI

from channels.base import ChannelName
from channels.simulators.common import FaultSettings

# "module:factory"; each factory is `create_app(*, bookings, seed, faults, hotels) -> FastAPI`.
SIMULATORS: dict[ChannelName, str] = {
    ChannelName.BOOKING_COM: "channels.simulators.booking_com:create_app",
    ChannelName.AGODA: "channels.simulators.agoda:create_app",
    ChannelName.EXPEDIA: "channels.simulators.expedia:create_app",
    ChannelName.AIRBNB: "channels.simulators.airbnb:create_app",
}
ORDER = [ChannelName.BOOKING_COM, ChannelName.AGODA, ChannelName.EXPEDIA, ChannelName.AIRBNB]


def build_app(channel: ChannelName | str, *, bookings: int = 50, seed: int = 42,
              faults: FaultSettings | None = None, hotels: int = 1) -> FastAPI:
    """The simulator ASGI app for one partner account (state of its first hotel at
    `app.state.sim`, every hotel in `app.state.sim.hotels`)."""
    module_name, _, attr = SIMULATORS[ChannelName(channel)].partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    app: FastAPI = factory(bookings=bookings, seed=seed, faults=faults or FaultSettings(),
                           hotels=hotels)
    return app


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_run(count: int) -> int:
    """The first of `count` consecutive free ports on 127.0.0.1 (`innsync simulate --channel
    all` and `innsync up --sim-port` take a run of four)."""
    for _ in range(50):
        first = free_port()
        if first + count > 65535:
            continue
        socks: list[socket.socket] = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no run of free ports")


@contextmanager
def running_server(app: Any, *, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app on 127.0.0.1 in a background thread; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sim-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"simulator did not start on port {port}")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


async def _serve_all(apps: list[tuple[ChannelName, FastAPI, int]], host: str) -> None:
    servers = [uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info", lifespan="off"))
               for _, app, port in apps]
    await asyncio.gather(*(server.serve() for server in servers))


def simulate(
    channel: str = typer.Option("all", help="booking.com | agoda | expedia | airbnb | all"),
    port: int = typer.Option(8100, help="port of the first simulator; others follow consecutively"),
    host: str = typer.Option("127.0.0.1", help="interface to bind"),
    bookings: int = typer.Option(50, help="bookings generated per partner"),
    seed: int = typer.Option(42, help="random seed (bookings and faults)"),
    error_rate: float = typer.Option(0.0, help="share of requests answered 503"),
    rate_limit_rate: float = typer.Option(0.0, help="share of requests answered 429"),
    retry_after: int = typer.Option(7, help="Retry-After seconds sent with 429"),
    latency_ms: int = typer.Option(0, help="latency added to every request"),
    timeout_rate: float = typer.Option(0.0, help="share of requests that stall"),
    timeout_seconds: float = typer.Option(30.0, help="how long a stalled request sleeps"),
    malformed_rate: float = typer.Option(0.0, help="share of responses with a garbled body"),
    partial_failure_rate: float = typer.Option(0.0, help="share of ARI updates rejected"),
    duplicate_rate: float = typer.Option(0.0, help="share of acked bookings re-delivered"),
    token_ttl: float = typer.Option(
        None, help="lifetime of issued tokens in seconds (default: each partner's own, 3600)"),
    token_limit: int = typer.Option(
        None, help="token exchanges allowed per window (default: Booking.com 30, others none)"),
    token_window: float = typer.Option(
        None, help="the token limit's window in seconds (default 3600); scale all three down "
                   "to compress time in soak tests"),
    id_offset: int = typer.Option(
        0, help="added to every generated booking id: give each start its own (innsync up "
                "uses the clock) so a restarted simulator never re-issues stored ids"),
    hotels: int = typer.Option(
        1, min=1, help="hotels connected to each simulated partner account, each with its "
                       "own rooms, rates and bookings"),
) -> None:
    """Serve protocol-faithful partner simulators over HTTP (one port per partner)."""
    faults = FaultSettings(
        error_rate=error_rate, rate_limit_rate=rate_limit_rate, retry_after_seconds=retry_after,
        latency_ms=latency_ms, timeout_rate=timeout_rate, timeout_seconds=timeout_seconds,
        malformed_rate=malformed_rate, partial_failure_rate=partial_failure_rate,
        duplicate_rate=duplicate_rate,
    )
    wanted = ORDER if channel == "all" else [ChannelName(channel)]
    apps: list[tuple[ChannelName, FastAPI, int]] = []
    for offset, name in enumerate(wanted):
        try:
            app = build_app(name, bookings=0, seed=seed, faults=faults.model_copy(),
                            hotels=hotels)
        except ImportError as exc:
            typer.echo(f"skipping {name}: simulator not available ({exc})", err=True)
            continue
        sim = app.state.sim
        changes = {"token_ttl_seconds": token_ttl, "exchange_limit": token_limit,
                   "window_seconds": token_window}
        sim.tokens.settings = sim.tokens.settings.model_copy(
            update={k: v for k, v in changes.items() if isinstance(v, int | float)})
        for hotel in sim.hotels.values():
            hotel.generator.next_id += id_offset
            if bookings:
                hotel.add_bookings(bookings)
        apps.append((name, app, port + offset))
    if not apps:
        raise typer.Exit(1)
    for name, _, p in apps:
        typer.echo(f"{name:<12} http://{host}:{p}  (admin: /_sim/stats, /_sim/ari, /_sim/faults, /_sim/tokens)")
    asyncio.run(_serve_all(apps, host))
