"""Pure, seeded generation of demo data: the hotel's shape, prices, and reservation batches
as numpy columns (no database here). db/demo.py loads them with COPY."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import numpy.typing as npt

from channels.base import ChannelName
from db.repositories.booking_plan import ACTIVE_STATUSES

IntArray = npt.NDArray[np.int64]

# (code, name, max occupancy, base units, base nightly price, share of bookings)
ROOM_TYPES = (
    ("STD", "Standard Double", 2, 20, Decimal("89.00"), 0.45),
    ("DLX", "Deluxe King, River View", 3, 12, Decimal("129.00"), 0.30),
    ("STE", "Suite Alfama", 4, 4, Decimal("219.00"), 0.10),
    ("FAM", "Family Room", 4, 8, Decimal("159.00"), 0.15),
)
# (code, name, price factor, meal plan, refundable, share of bookings)
RATE_PLANS = (
    ("BAR", "Best Available Rate", Decimal("1.00"), "RO", True, 0.50),
    ("NRF", "Non-refundable", Decimal("0.90"), "RO", False, 0.30),
    ("BB", "Bed & Breakfast", Decimal("1.15"), "BB", True, 0.20),
)
#: Where bookings come from; None is a direct booking (no channel booking row).
SOURCES: tuple[ChannelName | None, ...] = (
    ChannelName.BOOKING_COM, ChannelName.EXPEDIA, ChannelName.AGODA, ChannelName.AIRBNB, None
)
SOURCE_SHARES = (0.40, 0.20, 0.10, 0.10, 0.20)
STATUSES = ("confirmed", "cancelled", "no_show", "checked_in", "checked_out", "pending")
DAYS = 365  # inventory and rates from today
PAST_DAYS = 45  # reservations start this many days before today
MAX_NIGHTS = 7
LOS_SHARES = (0.22, 0.28, 0.20, 0.12, 0.08, 0.05, 0.05)
BAR = 0  # index of BAR in RATE_PLANS: Airbnb books only BAR

# Names per culture, with the country they go with: realistic non-ASCII on purpose.
_PEOPLE = (
    ("PT", ("João", "Inês", "Gonçalo", "Conceição", "Sebastião"),
     ("Magalhães", "Gonçalves", "Simões", "Patrício", "Brandão")),
    ("DE", ("Jürgen", "Zoë", "Björn", "Käthe", "Lukas"), ("Müller", "Schröder", "Weiß", "Groß", "Köhler")),
    ("FR", ("Chloé", "Léa", "François", "Hélène", "Noël"), ("Dubois", "Lefèvre", "Bérénger", "Mercier", "Gérard")),
    ("ES", ("José", "María", "Íñigo", "Begoña", "Sofía"), ("García", "Núñez", "Ibáñez", "Muñoz", "Peña")),
    ("PL", ("Łukasz", "Zofia", "Wojciech", "Małgorzata", "Jędrzej"), ("Wróbel", "Kowalczyk", "Żak", "Dąbrowski", "Sęk")),
    ("SE", ("Åsa", "Björn", "Märta", "Örjan", "Elin"), ("Åström", "Öberg", "Lindqvist", "Nyström", "Sjöberg")),
    ("TR", ("Mehmet", "Ayşe", "Çağrı", "Gökhan", "Şule"), ("Yılmaz", "Öztürk", "Çelik", "Şahin", "Doğan")),
    ("JP", ("太郎", "花子", "翔太", "美咲", "健"), ("山田", "佐藤", "鈴木", "高橋", "田中")),
    ("GB", ("Olivia", "Oliver", "Siobhán", "Rhys", "Amelia"), ("Smith", "O'Brien", "Jones", "Taylor", "Brown")),
    ("CZ", ("Jiří", "Tereza", "Ondřej", "Kateřina", "Tomáš"), ("Novák", "Dvořák", "Černý", "Procházka", "Kučera")),
)
FIRST = [f for _, firsts, _ in _PEOPLE for f in firsts]
LAST = [last for _, _, lasts in _PEOPLE for last in lasts]
COUNTRY_OF_FIRST = [c for c, firsts, _ in _PEOPLE for _ in firsts]


def ascii_slug(name: str) -> str:
    """A lower-case ASCII rendering for e-mail addresses (`guest` when nothing is left)."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = "".join(ch for ch in plain.lower() if ch.isalnum())
    return slug or "guest"


FIRST_SLUG = [ascii_slug(n) for n in FIRST]
LAST_SLUG = [ascii_slug(n) for n in LAST]


def nightly_price(room_type: int, plan: int, day: date) -> Decimal:
    """The demo price of one night: base x plan factor, +15% Fri/Sat, +20% Jun-Aug."""
    price = ROOM_TYPES[room_type][4] * RATE_PLANS[plan][2]
    if day.weekday() in (4, 5):
        price *= Decimal("1.15")
    if day.month in (6, 7, 8):
        price *= Decimal("1.20")
    return price.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class PriceTable:
    """Nightly prices in cents for day offsets -PAST_DAYS .. DAYS+MAX_NIGHTS, with prefix sums
    so a stay's amount is one subtraction."""

    today: date
    cents: IntArray  # [room type, plan, offset + PAST_DAYS]
    prefix: IntArray  # cumulative sums along the last axis, with a leading zero

    @classmethod
    def build(cls, today: date) -> PriceTable:
        """Prices for every room type, plan and day around `today`."""
        span = PAST_DAYS + DAYS + MAX_NIGHTS + 1
        cents = np.zeros((len(ROOM_TYPES), len(RATE_PLANS), span), dtype=np.int64)
        for i in range(span):
            day = today + timedelta(days=i - PAST_DAYS)
            for rt in range(len(ROOM_TYPES)):
                for rp in range(len(RATE_PLANS)):
                    cents[rt, rp, i] = int(nightly_price(rt, rp, day) * 100)
        zero = np.zeros((len(ROOM_TYPES), len(RATE_PLANS), 1), dtype=np.int64)
        return cls(today, cents, np.concatenate([zero, np.cumsum(cents, axis=2)], axis=2))

    def stay_cents(self, rt: IntArray, rp: IntArray, start: IntArray, nights: IntArray) -> IntArray:
        """Total cents of stays starting at day offset `start` for `nights` nights."""
        lo = start + PAST_DAYS
        result: IntArray = self.prefix[rt, rp, lo + nights] - self.prefix[rt, rp, lo]
        return result


@dataclass(frozen=True)
class Batch:
    """One batch of reservations (and their guests) as columns; row i is reservation i."""

    room_type: IntArray
    plan: IntArray
    source: IntArray  # index into SOURCES
    start: IntArray  # check-in as a day offset from today
    nights: IntArray
    status: IntArray  # index into STATUSES
    adults: IntArray
    children: IntArray
    first: IntArray  # index into FIRST
    last: IntArray  # index into LAST
    booked: IntArray  # booking day offset (<= 0, <= start)
    minute: IntArray  # minute of the booking day

    def __len__(self) -> int:
        return len(self.start)


def generate_batch(seed: int, index: int, size: int) -> Batch:
    """Batch `index` of a seeded run: the same (seed, index, size) always gives the same rows."""
    rng = np.random.default_rng([seed, index])
    rt = rng.choice(len(ROOM_TYPES), size, p=[r[5] for r in ROOM_TYPES])
    source = rng.choice(len(SOURCES), size, p=SOURCE_SHARES)
    plan = rng.choice(len(RATE_PLANS), size, p=[p[5] for p in RATE_PLANS])
    plan = np.where(source == SOURCES.index(ChannelName.AIRBNB), BAR, plan)
    start = rng.integers(-PAST_DAYS, DAYS, size)
    nights = rng.choice(np.arange(1, MAX_NIGHTS + 1), size, p=LOS_SHARES)
    roll = rng.random(size)
    past = start + nights <= 0
    in_house = (start <= 0) & ~past
    status = np.select(
        [past & (roll < 0.85), past & (roll < 0.92), past, in_house & (roll < 0.95), in_house,
         roll < 0.89],
        [STATUSES.index(s) for s in
         ("checked_out", "no_show", "cancelled", "checked_in", "cancelled", "confirmed")],
        default=STATUSES.index("cancelled"),
    )
    max_occ = np.array([r[2] for r in ROOM_TYPES])[rt]
    adults = 1 + (rng.random(size) * max_occ).astype(np.int64)
    children = np.where(max_occ - adults >= 1, rng.integers(0, 3, size), 0)
    children = np.minimum(children, max_occ - adults)
    first = rng.integers(0, len(FIRST), size)
    same_culture = (first // 5) * 5 + rng.integers(0, 5, size)
    last = np.where(rng.random(size) < 0.8, same_culture, rng.integers(0, len(LAST), size))
    lead = rng.integers(0, 120, size)
    booked = np.minimum(start - lead, 0)
    minute = rng.integers(0, 24 * 60, size)
    return Batch(rt, plan, source, start, nights, status, adults, children, first, last,
                 booked, minute)


ACTIVE = np.array([s in ACTIVE_STATUSES for s in STATUSES])


def add_sold(sold: IntArray, batch: Batch) -> None:
    """Add the batch's room nights on days 0..DAYS-1 to `sold[room type, day]`:
    one per night of every reservation whose status holds a room (ACTIVE_STATUSES)."""
    holds = ACTIVE[batch.status]
    for k in range(MAX_NIGHTS):
        day = batch.start + k
        take = holds & (batch.nights > k) & (day >= 0) & (day < DAYS)
        np.add.at(sold, (batch.room_type[take], day[take]), 1)
