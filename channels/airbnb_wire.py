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

import hashlib
import hmac
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from channels.base import (
    ARIUpdate,
    BookingEvent,
    BookingRecord,
    ChannelName,
    MalformedPayloadError,
)
from channels.pci import is_security_code_key, last4, mask_card_number, scrub_text

CHANNEL = ChannelName.AIRBNB
SIGNATURE_HEADER = "X-Airbnb-Signature"
CANCELLED_STATUSES = frozenset({"cancelled", "denied", "timedout"})


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


def load_json(body: bytes, what: str) -> dict[str, Any]:
    """Parse a JSON object body or raise MalformedPayloadError naming Airbnb."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedPayloadError(CHANNEL, f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedPayloadError(CHANNEL, f"{what} is not a JSON object")
    return data


def _money(value: Any) -> Decimal | None:
    # str() first so 149.1 stays 149.1 rather than its binary expansion.
    return None if value is None else Decimal(str(value))


def event_of(res: dict[str, Any]) -> BookingEvent:
    """cancelled/denied/timedout -> CANCELLED, altered -> MODIFIED, otherwise NEW."""
    if res.get("status") in CANCELLED_STATUSES:
        return BookingEvent.CANCELLED
    return BookingEvent.MODIFIED if res.get("altered_at") else BookingEvent.NEW


def _reservation(res: dict[str, Any]) -> BookingRecord:
    code = res["confirmation_code"]
    check_in = date.fromisoformat(res["checkin_date"]) if res.get("checkin_date") else None
    check_out = date.fromisoformat(res["checkout_date"]) if res.get("checkout_date") else None
    details = res.get("guest_details") or {}
    adults = details.get("number_of_adults")
    children = int(details.get("number_of_children") or 0) + int(details.get("number_of_infants") or 0)
    if adults is None:
        adults = max(1, int(res.get("guest_count") or 1) - children)
    currency = res.get("currency")
    nightly = {date.fromisoformat(n["date"]): Decimal(str(n["amount"])) for n in res.get("nightly_prices") or ()}
    total = _money(res.get("total_price"))
    g = res.get("guest") or {}
    card = res.get("payment_card")
    card_last4 = None
    raw = res
    if card:
        # Copy only when there is something to mask; the parsed dict is ours anyway.
        number = str(card.get("card_number") or "")
        masked = {k: v for k, v in card.items() if not is_security_code_key(k)}
        if number:
            masked["card_number"] = mask_card_number(number)
            card_last4 = last4(number)
        raw = {**res, "payment_card": masked}
    created = res.get("created_at")
    return BookingRecord(
        channel=CHANNEL, external_id=code, event=event_of(res), status=res.get("status", ""),
        revision=res.get("updated_at") or created or "",
        booked_at=datetime.fromisoformat(created) if created else None,
        hotel_code=str(res.get("listing_id", "")) or None, check_in=check_in, check_out=check_out,
        # Nested plain dicts: validated as GuestInfo/BookedRoom in the record's single pass.
        guest={"first_name": g.get("first_name", ""), "last_name": g.get("last_name", ""),
               "email": g.get("email"), "phone": g.get("phone"), "country": g.get("country")},
        rooms=[{
            "partner_room_type_code": str(res.get("listing_id", "")), "check_in": check_in,
            "check_out": check_out, "adults": adults, "children": children, "amount": total,
            "currency": currency, "nightly_rates": nightly,
        }],
        total_amount=total, currency=currency, card_last4=card_last4, comments=scrub_text(res["guest_message"]) if res.get("guest_message") else None,
        ack_token=f"{code}|{res.get('status', '')}", raw_payload=raw,
    )


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
