"""Benchmark: bookings/s each adapter's `parse_bookings` handles, beside a bare parse of the same bytes.

    .venv/bin/python bench/parse.py [--bookings 5000] [--repeats 5] [--seed 7]

For every partner the simulator's own renderer turns N generated bookings into one payload
(Booking.com OTA_HotelResNotifRQ, Agoda GetBookingDetail, Expedia BR, Airbnb reservations
page). In the same run, best of `--repeats`: the adapter's `parse_bookings` (hardened parse,
PCI masking, pydantic records) vs a bare `lxml.etree.fromstring` (XML) or `json.loads` (JSON).
Target: the adapter keeps at least half the bare speed (ratio >= 0.5). Partners whose adapter
or simulator is missing are skipped with a note.

The bare side uses lxml's default parser, the adapter `channels.xmlsafe.parse_xml` (no DTD,
entities or network; one byte scan for "<!"): both parse in the same time, so the ratio is
the cost of turning the tree into records. The two sides alternate, one call each per
repeat, so load from other processes hits both alike (on a shared box the bare parse alone
varies 2-3x between runs: compare ratios from one run, never absolute numbers across runs).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from channels.base import ChannelName  # noqa: E402
from channels.simulators.catalog import CATALOG  # noqa: E402
from channels.simulators.generator import BookingGenerator, SimBooking  # noqa: E402

TARGET = 0.5
Render = Callable[[list[SimBooking]], bytes]


def _booking_com(messages: list[SimBooking]) -> bytes:
    sim = importlib.import_module("channels.simulators.booking_com")
    body: bytes = sim.render_notif(messages, CATALOG[ChannelName.BOOKING_COM]["hotel_id"], sim.RES_NOTIF)
    return body


def _agoda(messages: list[SimBooking]) -> bytes:
    body: bytes = importlib.import_module("channels.simulators.agoda").render_booking_detail(messages)
    return body


def _expedia(messages: list[SimBooking]) -> bytes:
    sim = importlib.import_module("channels.simulators.expedia")
    render = getattr(sim, "render_booking_retrieval", None) or getattr(sim, "render_bookings", None)
    if render is None:
        raise ImportError("channels.simulators.expedia has no render_booking_retrieval/render_bookings")
    body: bytes = render(messages)
    return body


def _airbnb(messages: list[SimBooking]) -> bytes:
    body: bytes = importlib.import_module("channels.simulators.airbnb").render_reservations_page(messages)
    return body


@dataclass(frozen=True)
class Case:
    channel: str
    parser: str  # module holding parse_bookings
    render: Render
    kind: str  # "xml" | "json"


CASES = [
    Case("booking.com", "channels.booking_com", _booking_com, "xml"),
    Case("agoda", "channels.agoda", _agoda, "xml"),
    Case("expedia", "channels.expedia", _expedia, "xml"),
    Case("airbnb", "channels.airbnb", _airbnb, "json"),
]


def best_of(fn: Callable[[], Any], repeats: int) -> float:
    """Fastest wall time of `repeats` calls (GC off while timing, as timeit does)."""
    times = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return min(times)


def run(case: Case, messages: list[SimBooking], repeats: int) -> dict[str, Any]:
    """Time one partner: adapter parse vs bare parse of the same bytes."""
    parse_bookings = importlib.import_module(case.parser).parse_bookings
    body = case.render(messages)
    count = len(parse_bookings(body))  # warm-up, and how many bookings the payload holds
    bare: Callable[[], Any] = (lambda: etree.fromstring(body)) if case.kind == "xml" else (lambda: json.loads(body))
    # Alternate call by call so background load hits both sides alike.
    t_bare = t_adapter = float("inf")
    for _ in range(repeats):
        t_bare = min(t_bare, best_of(bare, 1))
        t_adapter = min(t_adapter, best_of(lambda: parse_bookings(body), 1))
    return {"channel": case.channel, "bookings": count, "bytes": len(body),
            "adapter_per_s": count / t_adapter, "bare_per_s": count / t_bare, "ratio": t_bare / t_adapter}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bookings", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    messages = BookingGenerator(args.seed).generate(args.bookings)[: args.bookings]
    rows, notes = [], []
    for case in CASES:
        try:
            rows.append(run(case, messages, args.repeats))
        except (ImportError, AttributeError) as exc:
            notes.append(f"skipped {case.channel}: {exc}")
    print(f"{'adapter':<12} {'bookings':>8} {'MB':>6} {'bookings/s':>12} {'bare parse/s':>13} {'ratio':>6}  target >= {TARGET}")
    for r in rows:
        verdict = "PASS" if r["ratio"] >= TARGET else "MISS"
        print(f"{r['channel']:<12} {r['bookings']:>8} {r['bytes'] / 1e6:>6.1f} {r['adapter_per_s']:>12,.0f} "
              f"{r['bare_per_s']:>13,.0f} {r['ratio']:>6.2f}  {verdict}")
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
