"""Seeded generator of realistic bookings as plain data; each simulator renders its own format."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from channels.simulators.catalog import PMS_RATE_PLANS, PMS_ROOM_TYPES

Event = Literal["new", "modified", "cancelled"]

_FIRST = ["Zoë", "Łukasz", "太郎", "Anna", "José", "Søren", "Chloé", "Mehmet", "Olivia", "Ngozi", "Björn", "Hana"]
_LAST = ["Müller", "Wróbel", "山田", "Smith", "García", "Øster", "Dubois", "Yılmaz", "O'Brien", "Okafor", "Åström", "Nováková"]
_COUNTRIES = ["DE", "PL", "JP", "GB", "ES", "DK", "FR", "TR", "IE", "NG", "SE", "CZ"]
_BASE = {"STD": Decimal("89"), "DLX": Decimal("129"), "STE": Decimal("219"), "FAM": Decimal("159")}
_PLAN = {"BAR": Decimal("1.00"), "NRF": Decimal("0.90"), "BB": Decimal("1.15")}
_COMMENTS = ["", "", "Late arrival, around 23:00.", "Allergic to feathers – please no down pillows.", "Ruhiges Zimmer bitte 🙏", "Crib needed"]
_CARDS = [("VI", "4", 16, 3), ("MC", "51", 16, 3), ("MC", "2221", 16, 3), ("AX", "37", 15, 4)]


@dataclass(frozen=True)
class SimGuest:
    first_name: str
    last_name: str
    email: str
    phone: str
    country: str


@dataclass(frozen=True)
class SimCard:
    brand: str  # VI / MC / AX
    number: str  # full number: the simulators send it so PCI masking can be tested
    cvv: str
    expiry: str  # MMYY
    holder: str


@dataclass(frozen=True)
class SimRoom:
    room_type: str  # PMS code: simulators translate through the catalog
    rate_plan: str
    check_in: date
    check_out: date
    adults: int
    child_ages: tuple[int, ...] = ()
    nightly: tuple[tuple[date, Decimal], ...] = ()

    @property
    def total(self) -> Decimal:
        return sum((amount for _, amount in self.nightly), Decimal("0.00"))


@dataclass(frozen=True)
class SimBooking:
    """One message about a booking: its state after `event` at revision `revision`."""

    booking_id: str
    event: Event
    revision: int
    created_at: datetime
    modified_at: datetime
    guest: SimGuest
    rooms: tuple[SimRoom, ...]
    currency: str
    card: SimCard
    comments: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> Decimal:
        return sum((r.total for r in self.rooms), Decimal("0.00"))

    @property
    def check_in(self) -> date:
        return min(r.check_in for r in self.rooms)

    @property
    def check_out(self) -> date:
        return max(r.check_out for r in self.rooms)


def luhn_complete(prefix_and_body: str) -> str:
    """Append the Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(prefix_and_body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return prefix_and_body + str((10 - total % 10) % 10)


class BookingGenerator:
    """Deterministic for a seed: the same seed gives the same bookings and message order."""

    def __init__(self, seed: int = 42, *, today: date | None = None, first_id: int = 4_000_000_001,
                 currency: str = "EUR") -> None:
        self.rng = random.Random(seed)
        self.today = today or datetime.now(UTC).date()
        self.next_id = first_id
        self.currency = currency

    def _card(self, holder: str) -> SimCard:
        brand, prefix, length, cvv_len = self.rng.choice(_CARDS)
        body = prefix + "".join(str(self.rng.randrange(10)) for _ in range(length - len(prefix) - 1))
        expiry = f"{self.rng.randint(1, 12):02d}{(self.today.year + self.rng.randint(1, 5)) % 100:02d}"
        cvv = "".join(str(self.rng.randrange(10)) for _ in range(cvv_len))
        return SimCard(brand, luhn_complete(body), cvv, expiry, holder)

    def _guest(self) -> SimGuest:
        i = self.rng.randrange(len(_FIRST))
        j = i if self.rng.random() < 0.8 else self.rng.randrange(len(_LAST))
        first, last = _FIRST[i], _LAST[j]
        email = f"guest{self.rng.randrange(10**6)}@example.{_COUNTRIES[j].lower()}"
        phone = f"+{self.rng.randint(1, 99)} {self.rng.randint(100, 999)} {self.rng.randint(100000, 9999999)}"
        return SimGuest(first, last, email, phone, _COUNTRIES[j])

    def _room(self, check_in: date, nights: int) -> SimRoom:
        room_type = self.rng.choice(PMS_ROOM_TYPES)
        rate_plan = self.rng.choice(PMS_RATE_PLANS)
        adults = self.rng.choice([1, 2, 2, 2, 3] if room_type != "FAM" else [2, 2, 3])
        kids = self.rng.choice([0, 0, 0, 1, 2]) if room_type in ("FAM", "STE") else 0
        ages = tuple(sorted(self.rng.randint(0, 16) for _ in range(kids)))
        nightly = []
        for n in range(nights):
            day = check_in + timedelta(days=n)
            weekend = Decimal("1.2") if day.weekday() in (4, 5) else Decimal("1")
            amount = (_BASE[room_type] * _PLAN[rate_plan] * weekend).quantize(Decimal("0.01"))
            nightly.append((day, amount))
        return SimRoom(room_type, rate_plan, check_in, check_in + timedelta(days=nights), adults, ages, tuple(nightly))

    def new_booking(self, created_at: datetime) -> SimBooking:
        """A fresh booking (one to three rooms, lead time 0..300 days)."""
        lead = min(int(self.rng.expovariate(1 / 40)), 300)
        check_in = self.today + timedelta(days=lead)
        nights = self.rng.choice([1, 1, 2, 2, 3, 4, 7])
        n_rooms = self.rng.choice([1, 1, 1, 1, 2, 3])
        guest = self._guest()
        rooms = tuple(self._room(check_in, nights) for _ in range(n_rooms))
        booking_id = str(self.next_id)
        self.next_id += 1
        return SimBooking(
            booking_id=booking_id, event="new", revision=1, created_at=created_at,
            modified_at=created_at, guest=guest, rooms=rooms, currency=self.currency,
            card=self._card(f"{guest.first_name} {guest.last_name}"),
            comments=self.rng.choice(_COMMENTS),
        )

    def modify(self, booking: SimBooking, at: datetime) -> SimBooking:
        """Same booking one night longer (and maybe one more adult)."""
        rooms = []
        for room in booking.rooms:
            extended = self._room(room.check_in, (room.check_out - room.check_in).days + 1)
            rooms.append(replace(extended, room_type=room.room_type, rate_plan=room.rate_plan,
                                 adults=min(room.adults + self.rng.choice([0, 1]), 4),
                                 child_ages=room.child_ages,
                                 nightly=tuple((d, a) for d, a in extended.nightly)))
        return replace(booking, event="modified", revision=booking.revision + 1, modified_at=at, rooms=tuple(rooms))

    def cancel(self, booking: SimBooking, at: datetime) -> SimBooking:
        return replace(booking, event="cancelled", revision=booking.revision + 1, modified_at=at)

    def generate(self, count: int, *, start: datetime | None = None, changes: bool = True) -> list[SimBooking]:
        """`count` bookings as a time-ordered message stream (new, then modifications/cancels;
        without `changes` only the new ones)."""
        clock = start or datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        messages: list[SimBooking] = []
        for _ in range(count):
            clock += timedelta(seconds=self.rng.randint(5, 90))
            booking = self.new_booking(clock)
            messages.append(booking)
            later = clock
            if not changes:
                continue
            if self.rng.random() < 0.25:
                later += timedelta(minutes=self.rng.randint(1, 30))
                booking = self.modify(booking, later)
                messages.append(booking)
            if self.rng.random() < 0.15:
                later += timedelta(minutes=self.rng.randint(1, 30))
                messages.append(self.cancel(booking, later))
        messages.sort(key=lambda m: (m.modified_at, m.booking_id, m.revision))
        return messages
