"""Benchmark: a booking made at one partner, until every other channel of the hotel sells what is left.

    .venv/bin/python bench/latency.py [--properties 1] [--samples 10] [--gap 10] [--json FILE]

What runs (issue 13, "event-driven closing"): `innsync up` on a fresh home (embedded
PostgreSQL, its own Prefect server, the four partner simulators, `--properties` demo hotels
(one partner account per partner serving all of them) and their demo traffic), as an
operator runs it; the group's first hotel is measured. Then, `--samples`
times for each of two partners, one new booking (no later changes) is made at the partner's
simulator (`POST /_sim/bookings?changes=false`, which answers its rooms and nights):

- **webhook partner, Airbnb**: the bench then POSTs Airbnb's signed reservation webhook to
  innsync's API at once (as Airbnb would; the demo channel gets the simulator's webhook
  secret first), which starts the fetch of that booking;
- **polling partner, Booking.com**: nothing more; the every-minute pull finds it. Each
  polling sample waits a random part of the pull interval first, so the bookings fall at
  random points of the cycle (made right after the previous sample, they all fell just
  after a pull and waited ~48 s each).

Measured from just before the booking is made: when innsync has stored it (its
channel_bookings row), and when every *other* channel of the hotel has accepted the
availability innsync now has for that room type on those nights (read from the other
simulators, `GET /_sim/ari/days`, against `db.repositories.ari.availability` for that
channel; Airbnb's calendar holds only available/unavailable, so it agrees as long as a room
is left). A sample that does not agree within `--timeout` seconds is counted as a miss.

Prints p50/p95/max per partner beside the targets (webhook p95 <= 3 s; polling p95 <= pull
interval + 3 s) and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, Field

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from bench.soak import Stack, clean_env  # noqa: E402
from channels.simulators.server import free_port, free_port_run  # noqa: E402

WEBHOOK_PARTNER = "airbnb"
POLLING_PARTNER = "booking.com"
PULL_INTERVAL_S = 60.0
TARGET_WEBHOOK_P95_S = 3.0
TARGET_POLLING_P95_S = PULL_INTERVAL_S + 3.0
#: The webhook secret of the Airbnb simulator (channels.simulators.airbnb.create_app default).
AIRBNB_SIM_SECRET = "sim-airbnb-webhook-secret"


class Sample(BaseModel):
    partner: str
    booking: str
    stored_s: float | None = None  # booking made -> stored in innsync
    closed_s: float | None = None  # booking made -> every other channel agrees
    per_channel_s: dict[str, float] = Field(default_factory=dict)


class PartnerFigures(BaseModel):
    partner: str
    samples: int
    misses: int
    stored_p50_s: float | None
    closed_p50_s: float | None
    closed_p95_s: float | None
    closed_max_s: float | None
    target_p95_s: float

    def line(self) -> str:
        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}"
        ratio = ("-" if self.closed_p95_s is None
                 else f"{self.closed_p95_s / self.target_p95_s:.2f}")
        return (f"latency {self.partner}: booking to every other channel closed p50 "
                f"{f(self.closed_p50_s)} s, p95 {f(self.closed_p95_s)} s, max "
                f"{f(self.closed_max_s)} s (stored p50 {f(self.stored_p50_s)} s; "
                f"{self.samples} samples, {self.misses} missed); target p95 <= "
                f"{self.target_p95_s:.0f} s, ratio {ratio}")


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def figures(partner: str, samples: list[Sample], target: float) -> PartnerFigures:
    closed = [s.closed_s for s in samples if s.closed_s is not None]
    stored = [s.stored_s for s in samples if s.stored_s is not None]
    return PartnerFigures(
        partner=partner, samples=len(samples), misses=len(samples) - len(closed),
        stored_p50_s=statistics.median(stored) if stored else None,
        closed_p50_s=statistics.median(closed) if closed else None,
        closed_p95_s=percentile(closed, 0.95), closed_max_s=max(closed) if closed else None,
        target_p95_s=target,
    )


class Hotel:
    """The demo hotel as the bench sees it: its channels, room types and mappings (SQL)."""

    def __init__(self, database_url: str) -> None:
        from sqlalchemy import create_engine, text

        self.engine = create_engine(database_url, pool_size=2)
        with self.engine.connect() as conn:
            # The group's first hotel (the simulators' first hotel of each account).
            self.property_id = int(conn.execute(text(
                "SELECT min(property_id) FROM channels WHERE enabled")).scalar_one())
            rows = conn.execute(text(
                "SELECT id, channel_name, account_id FROM channels WHERE enabled "
                "AND property_id = :p ORDER BY id"), {"p": self.property_id}).all()
            self.channels = {r.channel_name: r.id for r in rows}
            self.accounts = {r.channel_name: r.account_id for r in rows}
            self.room_types: dict[str, int] = {r.code: r.id for r in conn.execute(text(
                "SELECT code, id FROM room_types WHERE property_id = :p"), {"p": self.property_id})}
            self.codes = {(r.channel_id, r.room_type_id): r.partner_room_code for r in conn.execute(
                text("SELECT channel_id, room_type_id, partner_room_code FROM channel_room_mappings"))}

    def stored(self, channel: str, external_id: str) -> bool:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return conn.execute(text(
                "SELECT 1 FROM channel_bookings WHERE channel_id = :c AND external_booking_id = :e"),
                {"c": self.channels[channel], "e": external_id}).first() is not None

    def wanted(self, channel: str, room_type_id: int, first: date, last: date) -> dict[str, int]:
        """Rooms to sell innsync has now for the channel, by night (0 under stop-sell)."""
        from sqlalchemy.orm import Session

        from db.repositories.ari import availability

        with Session(self.engine) as session:
            cal = availability(session, self.channels[channel], first, last, [room_type_id])
        return {d.isoformat(): v.available or 0 for days in cal.values() for d, v in days.items()}


def agrees(channel: str, sim_days: dict[str, Any], wanted: dict[str, int]) -> bool:
    """The partner's calendar sells what innsync has for every night."""
    for night, rooms in wanted.items():
        got = sim_days.get(night)
        if got is None:
            return False
        if channel == "airbnb":
            if got.get("availability") != ("available" if rooms > 0 else "unavailable"):
                return False
        elif (0 if got.get("stop_sell") else got.get("available")) != rooms:
            return False
    return True


def measure(stack: Stack, hotel: Hotel, partner: str, timeout: float) -> Sample:
    """One booking at `partner`, timed until every other channel agrees."""
    from channels.simulators.airbnb import confirmation_code

    began = time.monotonic()
    made = httpx.post(f"{stack.sims[partner]}/_sim/bookings",
                      params={"count": 1, "changes": "false"}, timeout=10).json()["bookings"][0]
    external = confirmation_code(made["booking_id"]) if partner == "airbnb" else made["booking_id"]
    if partner == WEBHOOK_PARTNER:
        from channels.airbnb_wire import SIGNATURE_HEADER, sign_webhook

        body = json.dumps({"action": "reservation_created",
                           "reservation": {"confirmation_code": external}}).encode()
        httpx.post(f"{stack.api}/api/webhooks/airbnb", content=body, timeout=10, headers={
            SIGNATURE_HEADER: sign_webhook(body, AIRBNB_SIM_SECRET),
            "Content-Type": "application/json"}).raise_for_status()
    sample = Sample(partner=partner, booking=external)
    room = made["rooms"][0]
    room_type_id = hotel.room_types[room["room_type"]]
    first = date.fromisoformat(room["check_in"])
    last = date.fromisoformat(room["check_out"]) - timedelta(days=1)
    others = [c for c in hotel.channels if c != partner]
    deadline = began + timeout
    while time.monotonic() < deadline:
        if sample.stored_s is None:
            if not hotel.stored(partner, external):
                time.sleep(0.2)
                continue
            sample.stored_s = time.monotonic() - began
        for channel in others:
            if channel in sample.per_channel_s:
                continue
            code = hotel.codes[(hotel.channels[channel], room_type_id)]
            days = httpx.get(f"{stack.sims[channel]}/_sim/ari/days", timeout=10, params={
                "room": code, "start": first.isoformat(), "end": last.isoformat()}).json()
            if agrees(channel, days, hotel.wanted(channel, room_type_id, first, last)):
                sample.per_channel_s[channel] = time.monotonic() - began
        if len(sample.per_channel_s) == len(others):
            sample.closed_s = max(sample.per_channel_s.values())
            return sample
        time.sleep(0.2)
    return sample


def run(samples: int, gap: float, timeout: float, properties: int = 1,
        settle: float = 90.0, workdir: Path | None = None) -> dict[str, Any]:
    base = workdir or Path(tempfile.mkdtemp(prefix="innsync-latency-"))
    home = base / "home"
    stack = Stack(home, free_port(), free_port(), free_port_run(4), clean_env(INNSYNC_HOME=str(home)),
                  up_args=["--demo-reservations", "20", "--demo-properties", str(properties)])
    print(f"starting innsync up --demo-properties {properties} in {home} ...", flush=True)
    stack.start(timeout=900)
    try:
        return sample_on(stack, home, properties, samples, gap, timeout, settle)
    finally:
        stack.stop()


def sample_on(stack: Stack, home: Path, properties: int, samples: int, gap: float,
              timeout: float, settle: float = 0.0) -> dict[str, Any]:
    """Time `samples` bookings per partner on a running stack (bench/scale.py uses it after
    its window, on a stack that has reached its steady state)."""
    os.environ["INNSYNC_HOME"] = str(home)
    stack_info = json.loads((home / "stack.json").read_text())
    hotel = Hotel(stack_info["database_url"])
    headers = {"X-API-Key": stack.admin_key}
    # The signing secret belongs to the channel's partner account when it has one.
    account = hotel.accounts[WEBHOOK_PARTNER]
    target = (f"partner-accounts/{account}" if account is not None
              else f"channels/{hotel.channels[WEBHOOK_PARTNER]}")
    httpx.patch(f"{stack.api}/api/{target}", headers=headers,
                json={"config": {"webhookSecret": AIRBNB_SIM_SECRET}},
                timeout=10).raise_for_status()
    # Let the first pulls and the start-up pushes (every hotel's seeded bookings) settle
    # before timing.
    time.sleep(settle)
    taken: dict[str, list[Sample]] = {WEBHOOK_PARTNER: [], POLLING_PARTNER: []}
    phase = random.Random(samples)
    for i in range(samples):
        for partner in taken:
            if partner == POLLING_PARTNER:
                # A random point of the pull interval: right after the last sample the
                # booking would always be made just after a pull (lockstep, ~48 s each).
                time.sleep(phase.uniform(0, PULL_INTERVAL_S))
            sample = measure(stack, hotel, partner, timeout)
            taken[partner].append(sample)
            print(f"  {i + 1}/{samples} {partner} {sample.booking}: stored "
                  f"{sample.stored_s if sample.stored_s is None else round(sample.stored_s, 1)} s, "
                  f"closed {sample.closed_s if sample.closed_s is None else round(sample.closed_s, 1)} s "
                  f"{ {k: round(v, 1) for k, v in sample.per_channel_s.items()} }", flush=True)
            time.sleep(gap)
    out = {
        WEBHOOK_PARTNER: figures(WEBHOOK_PARTNER, taken[WEBHOOK_PARTNER], TARGET_WEBHOOK_P95_S),
        POLLING_PARTNER: figures(POLLING_PARTNER, taken[POLLING_PARTNER], TARGET_POLLING_P95_S),
    }
    print(f"latency: {properties} properties x 4 partners")
    for fig in out.values():
        print(fig.line())
    return {"figures": {k: v.model_dump() for k, v in out.items()},
            "samples": {k: [s.model_dump() for s in v] for k, v in taken.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=10, help="bookings per partner")
    parser.add_argument("--gap", type=float, default=10.0, help="seconds between bookings")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds before a miss")
    parser.add_argument("--properties", type=int, default=1,
                        help="demo hotels (each on all four partners); the first is measured "
                             "while the others' traffic runs")
    parser.add_argument("--settle", type=float, default=90.0,
                        help="seconds after the start before the first sample (the start's "
                             "backlog: ~6 min at 100 properties)")
    parser.add_argument("--json", type=Path, help="also write the samples and figures here")
    args = parser.parse_args()
    report = run(args.samples, args.gap, args.timeout, args.properties, args.settle)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
