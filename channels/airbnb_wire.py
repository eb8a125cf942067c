"""Airbnb JSON wire format: calendar bodies, reservation parsing, webhook signatures (pure).

Airbnb has no public API (software-partner programme only), so this dialect is approximate
and shared by the adapter (`channels/airbnb.py`) and the simulator
(`channels/simulators/airbnb.py`):

- calendar: `PUT /v2/calendars/{listing_id}/{start}/{end}`, `end` inclusive (last night);
- reservations: `GET /v2/reservations?listing_id=..&include_pending=true` answering
  `{"reservations": [...], "metadata": {"has_more": bool, "next_cursor": str|null,
  "offset": int, "limit": int}}`; `cursor=` or `_offset=`/`_limit=` paginate;
- errors: `{"error_code": 400, "error_type": "invalid_param", "error_message": ".."}`;
- webhooks: body signed with HMAC-SHA256 of the raw body and the shared secret, sent as
  header `X-Airbnb-Signature: sha256=<hex>`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from channels.base import (
    ARIUpdate,
    BookedRoom,
    BookingEvent,
    BookingRecord,
    ChannelName,
    GuestInfo,
    MalformedPayloadError,
    trusted,
)
from channels.pci import MASK, is_security_code_key, last4, mask_card_number, scrub_text

CHANNEL = ChannelName.AIRBNB
SIGNATURE_HEADER = "X-Airbnb-Signature"
CANCELLED_STATUSES = frozenset({"cancelled", "denied", "timedout"})
# Card keys repeat in every reservation: answer each once (the cache's C wrapper is cheap).
_is_secret = functools.lru_cache(maxsize=256)(is_security_code_key)


# ---------------------------------------------------------------- webhooks


def sign_webhook(body: bytes, secret: str) -> str:
    """The `X-Airbnb-Signature` header value for a webhook body."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_webhook_signature(body: bytes, header: str, secret: str) -> bool:
    """True when `header` is the HMAC-SHA256 of `body` under `secret` (constant-time)."""
    if not header or not secret:
        return False
    expected = sign_webhook(body, secret)
    candidate = header.strip()
    if not candidate.startswith("sha256="):
        candidate = f"sha256={candidate}"
    return hmac.compare_digest(expected.encode(), candidate.encode())


# ---------------------------------------------------------------- calendar


def calendar_body(update: ARIUpdate) -> dict[str, Any]:
    """The JSON body of one calendar PUT (fields left None are not sent)."""
    body: dict[str, Any] = {}
    if update.stop_sell or update.available == 0:
        body["availability"] = "unavailable"
    elif update.available is not None or update.stop_sell is False:
        body["availability"] = "available"
    if update.rate is not None:
        # JSON numbers as Airbnb sends them; two decimals keep cents exact.
        body["daily_price"] = float(update.rate.quantize(Decimal("0.01")))
    if update.min_los is not None:
        body["min_nights"] = update.min_los
    if update.max_los is not None:
        body["max_nights"] = update.max_los
    if update.closed_to_arrival is not None:
        body["closed_to_arrival"] = update.closed_to_arrival
    if update.closed_to_departure is not None:
        body["closed_to_departure"] = update.closed_to_departure
    return body


def error_message(body: bytes) -> tuple[str | None, str]:
    """(error_type, error_message) of an Airbnb error body, tolerating non-JSON."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, body[:200].decode("utf-8", "replace")
    if not isinstance(data, dict):
        return None, str(data)[:200]
    return data.get("error_type"), str(data.get("error_message", ""))


# ---------------------------------------------------------------- reservations


#: Largest JSON body accepted (a reservations page of 50 is ~40 KB); orjson itself refuses
#: nesting deeper than 1024, NaN/Infinity and invalid UTF-8.
MAX_JSON_BYTES = 32 * 1024 * 1024


def load_json(body: bytes, what: str) -> dict[str, Any]:
    """Parse a JSON object body or raise MalformedPayloadError naming Airbnb."""
    if len(body) > MAX_JSON_BYTES:
        raise MalformedPayloadError(CHANNEL, f"{what} is larger than {MAX_JSON_BYTES} bytes")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedPayloadError(CHANNEL, f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedPayloadError(CHANNEL, f"{what} is not a JSON object")
    return data


_AMOUNTS: dict[float, Decimal] = {}
_EMPTY: dict[str, Any] = {}


def _money(value: Any) -> Decimal:
    """A JSON amount as a finite Decimal (str() first, so 149.1 stays 149.1)."""
    if type(value) is float:
        # Prices repeat across nights and bookings, and float -> str -> Decimal is the
        # costliest step of a reservation: remember recent ones (Decimals are immutable).
        amount = _AMOUNTS.get(value)
        if amount is None:
            if len(_AMOUNTS) >= 4096:
                _AMOUNTS.clear()
            amount = _AMOUNTS[value] = Decimal(str(value))  # orjson never yields inf/nan
        return amount
    if type(value) is bool or not isinstance(value, int | str):
        raise TypeError(f"amount {value!r} is not a number")
    amount = Decimal(str(value))
    if not amount.is_finite():
        raise ValueError(f"amount {value!r} is not finite")
    return amount


def event_of(res: dict[str, Any]) -> BookingEvent:
    """cancelled/denied/timedout -> CANCELLED, altered -> MODIFIED, otherwise NEW."""
    if res.get("status") in CANCELLED_STATUSES:
        return BookingEvent.CANCELLED
    return BookingEvent.MODIFIED if res.get("altered_at") else BookingEvent.NEW


def _reservation(res: dict[str, Any]) -> BookingRecord:
    """One decoded reservation -> BookingRecord; values converted and type-checked here, so
    the records are built without a second (pydantic) validation pass."""
    if type(res) is not dict:
        raise TypeError("reservation is not an object")
    get = res.get
    code = res["confirmation_code"]
    if type(code) is not str or not code:
        raise ValueError(f"bad confirmation_code {code!r}")
    texts = (get("status"), get("checkin_date"), get("checkout_date"), get("currency"),
             get("created_at"), get("updated_at"), get("guest_message"))
    # One pass over every partner string (a loop is cheaper than a call per field).
    for value in texts:
        if value is not None and type(value) is not str:
            raise TypeError(f"expected a string, got {value!r}")
    status, arrival, departure, currency, created, updated, message = texts
    status = status or ""
    check_in = date.fromisoformat(arrival) if arrival else None
    check_out = date.fromisoformat(departure) if departure else None
    details = get("guest_details") or _EMPTY
    if type(details) is not dict:
        raise TypeError("guest_details is not an object")
    counts = (details.get("number_of_children") or 0, details.get("number_of_infants") or 0,
              details.get("number_of_adults"), get("guest_count") or 1)
    for value in counts:
        if value is not None and (type(value) is not int or value < 0):
            raise ValueError(f"guest count is not a non-negative integer: {value!r}")
    children = counts[0] + counts[1]
    adults = counts[2] if counts[2] is not None else max(1, counts[3] - children)
    nightly: dict[date, Decimal] = {}
    for night in get("nightly_prices") or ():
        nightly[date.fromisoformat(night["date"])] = _money(night["amount"])
    price = get("total_price")
    total = None if price is None else _money(price)
    g = get("guest") or _EMPTY
    if type(g) is not dict:
        raise TypeError("guest is not an object")
    listing = get("listing_id", "")
    if type(listing) is not str:
        if type(listing) is not int:
            raise TypeError(f"listing_id is not an id: {listing!r}")
        listing = str(listing)
    card = get("payment_card")
    card_last4 = None
    raw = res
    if card:
        if type(card) is not dict:
            raise TypeError("payment_card is not an object")
        # Copy only when there is something to mask; the caller's dict stays as it was.
        number = str(card.get("card_number") or "")
        masked = {k: v for k, v in card.items() if not _is_secret(k)}
        if number.isdigit() and len(number) >= 4:  # the usual case, without pci's clean-up
            card_last4 = number[-4:]
            masked["card_number"] = MASK + card_last4
        elif number:
            masked["card_number"] = mask_card_number(number)
            card_last4 = last4(number)
        raw = {**res, "payment_card": masked}
    names = g.get("first_name"), g.get("last_name"), g.get("email"), g.get("phone"), g.get("country")
    for value in names:
        if value is not None and type(value) is not str:
            raise TypeError(f"guest field is not a string: {value!r}")
    guest = trusted(GuestInfo, {"first_name": names[0] or "", "last_name": names[1] or "",
                                "email": names[2], "phone": names[3], "country": names[4]})
    room = trusted(BookedRoom, {
        "partner_room_type_code": listing, "partner_rate_plan_code": None,
        "check_in": check_in, "check_out": check_out, "adults": adults, "children": children,
        "child_ages": [], "amount": total, "currency": currency, "nightly_rates": nightly,
    })
    return trusted(BookingRecord, {
        "channel": CHANNEL, "external_id": code, "status": status,
        "event": BookingEvent.CANCELLED if status in CANCELLED_STATUSES else (
            BookingEvent.MODIFIED if get("altered_at") else BookingEvent.NEW),  # = event_of(res)
        "revision": updated or created or "",
        "booked_at": datetime.fromisoformat(created) if created else None,
        "hotel_code": listing or None, "check_in": check_in, "check_out": check_out,
        "guest": guest, "rooms": [room], "total_amount": total, "currency": currency,
        "card_last4": card_last4, "comments": scrub_text(message) if message else None,
        "ack_token": f"{code}|{status}", "raw_payload": raw,
    })


def parse_reservations(data: dict[str, Any]) -> list[BookingRecord]:
    """BookingRecords from a decoded reservations page."""
    items = data.get("reservations")
    if not isinstance(items, list):
        raise MalformedPayloadError(CHANNEL, "reservations page without a 'reservations' list")
    try:
        return [_reservation(r) for r in items]
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise MalformedPayloadError(CHANNEL, f"bad reservation: {exc!r}") from exc


def parse_bookings(body: bytes) -> list[BookingRecord]:
    """BookingRecords from a reservations page body, PCI-masked (last 4 digits, no CVC)."""
    return parse_reservations(load_json(body, "reservations page"))
