"""Airbnb JSON wire format: calendar bodies, reservation parsing, webhook signatures (pure).

Airbnb has no public API (software-partner programme only), so this dialect is approximate
and shared by the adapter (`channels/airbnb.py`) and the simulator
(`channels/simulators/airbnb.py`). Reservation field names and statuses follow what public
Airbnb integrations document (channels/README.md lists which source names which field):

- reservations: `GET /v2/reservations` answering `{"reservations": [...], "metadata": {...}}`;
  one reservation is `confirmation_code`, `listing_id`/`listing_id_str`, `status_type`
  (`pending`, `accept`, `deny`, `timeout`, `cancelled_by_guest|host|admin`), `start_date`,
  `end_date`, `nights`, `guest_details` (adults/children/infants), `guest_first_name`,
  `guest_last_name`, `guest_email`, `guest_phone_numbers`, `guest_preferred_locale`,
  `host_currency` and the payout figures as decimal strings (`expected_payout_amount_accurate`,
  `listing_base_price_accurate`, `host_fee_base_accurate`, `host_fee_vat_accurate`, ...);
- host decisions: `PUT /v2/reservations/{code}` with `{"attempt_action": "accept"|"deny"}`
  for a pending request, `{"status_type": "cancelled_by_host", "reason": ..}` to cancel;
- calendar: `PUT /v2/calendars/{listing_id}/{start}/{end}`, `end` inclusive (last night);
- *guesses* (no public source found): the `metadata` paging keys (`has_more`,
  `next_cursor`), `nightly_prices` (per-night breakdown), `guest_message`, the error body
  `{"error_code", "error_type", "error_message"}` and the webhook signature header
  `X-Airbnb-Signature: sha256=<hex HMAC-SHA256 of the body>`.
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
    ExtraService,
    GuestInfo,
    MalformedPayloadError,
    NightlyPrice,
    PaymentInfo,
    PaymentModel,
    trusted,
)
from channels.pci import MASK, is_security_code_key, last4, mask_card_number, scrub_text

CHANNEL = ChannelName.AIRBNB
SIGNATURE_HEADER = "X-Airbnb-Signature"
#: status_type values that end a reservation (public clients: deny, timeout, cancelled_by_*).
CANCELLED_STATUSES = frozenset({
    "deny", "timeout", "cancelled_by_guest", "cancelled_by_host", "cancelled_by_admin",
    "pending_voided", "checkpoint_voided",
})
#: decline_reason values public clients document for denying a request.
DECLINE_REASONS = frozenset({
    "dates_not_available", "not_a_good_fit", "waiting_for_better_reservation", "not_comfortable",
})
PENDING_STATUS = "pending"
ACCEPTED_STATUS = "accept"
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
    """deny/timeout/cancelled_* -> CANCELLED; changed after it was booked -> MODIFIED.

    `booked_at` is when the reservation entered the accepted state; an `updated_at` after it
    means an alteration (our inference: Airbnb documents no per-message event type).
    """
    if res.get("status_type") in CANCELLED_STATUSES:
        return BookingEvent.CANCELLED
    booked, updated = res.get("booked_at"), res.get("updated_at")
    if booked and updated and updated > booked:
        return BookingEvent.MODIFIED
    return BookingEvent.NEW


def _amount(get: Any, key: str) -> Decimal | None:
    value = get(key)
    return None if value is None or value == "" else _money(value)


def _text(value: Any, what: str) -> str | None:
    if value is not None and type(value) is not str:
        raise TypeError(f"{what} is not a string: {value!r}")
    return value


def _reservation(res: dict[str, Any]) -> BookingRecord:
    """One decoded reservation -> BookingRecord; values converted and type-checked here, so
    the records are built without a second (pydantic) validation pass."""
    if type(res) is not dict:
        raise TypeError("reservation is not an object")
    get = res.get
    code = res["confirmation_code"]
    if type(code) is not str or not code:
        raise ValueError(f"bad confirmation_code {code!r}")
    texts = (get("status_type"), get("start_date"), get("end_date"), get("host_currency"),
             get("created_at"), get("updated_at"), get("booked_at"), get("guest_message"),
             get("cancellation_policy_category"), get("guest_preferred_locale"))
    # One pass over every partner string (a loop is cheaper than a call per field).
    for value in texts:
        if value is not None and type(value) is not str:
            raise TypeError(f"expected a string, got {value!r}")
    status, arrival, departure, currency, created, updated, booked, message, policy, locale = texts
    status = status or ""
    check_in = date.fromisoformat(arrival[:10]) if arrival else None
    check_out = date.fromisoformat(departure[:10]) if departure else None
    nights = get("nights")
    if check_out is None and check_in is not None and type(nights) is int and nights > 0:
        check_out = date.fromordinal(check_in.toordinal() + nights)
    details = get("guest_details") or _EMPTY
    if type(details) is not dict:
        raise TypeError("guest_details is not an object")
    counts = (details.get("number_of_children") or 0, details.get("number_of_infants") or 0,
              details.get("number_of_adults"), get("number_of_guests") or 1)
    for value in counts:
        if value is not None and (type(value) is not int or value < 0):
            raise ValueError(f"guest count is not a non-negative integer: {value!r}")
    children = counts[0] + counts[1]
    adults = counts[2] if counts[2] is not None else max(1, counts[3] - children)
    prices: list[NightlyPrice] = []
    nightly: dict[date, Decimal] = {}
    for night in get("nightly_prices") or ():  # a guess: no public source shows one
        day, amount = date.fromisoformat(night["date"]), _money(night["amount"])
        nightly[day] = amount
        prices.append(trusted(NightlyPrice, {
            "night": day, "amount": amount, "amount_before_tax": None, "amount_after_tax": None,
            "base": amount, "extra_person_fees": None, "service_fees": None,
            "currency": currency, "promotion": None}))
    payout = _amount(get, "expected_payout_amount_accurate")
    host_fee = _amount(get, "host_fee_base_accurate")
    if host_fee is not None:
        vat = _amount(get, "host_fee_vat_accurate")
        commission: Decimal | None = host_fee + vat if vat is not None else host_fee
    else:
        commission = _amount(get, "listing_host_fee_accurate")  # deprecated by Airbnb
    if status in CANCELLED_STATUSES:
        # What the host keeps of a cancelled reservation (0 when the host cancelled).
        kept = _amount(get, "listing_cancellation_payout_accurate")
        if kept is not None:
            payout = kept
            commission = _amount(get, "listing_cancellation_host_fee_accurate")
    extras: list[ExtraService] = []
    cleaning = _amount(get, "listing_cleaning_fee_accurate")
    if cleaning:
        extras.append(_extra("CLEANING_FEE", "Cleaning fee", cleaning, currency))
    for fee in get("standard_fees_details") or ():
        if type(fee) is not dict:
            raise TypeError("standard_fees_details item is not an object")
        kind = _text(fee.get("fee_type"), "fee_type")
        extras.append(_extra(kind, kind, _money(fee["amount_native"]), currency))
    listing = get("listing_id_str") or get("listing_id", "")
    if type(listing) is not str:
        if type(listing) is not int:
            raise TypeError(f"listing_id is not an id: {listing!r}")
        listing = str(listing)
    card = get("payment_card")  # Airbnb shares no cards; masked all the same if one comes
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
    phones = get("guest_phone_numbers") or ()
    if type(phones) not in (list, tuple):
        raise TypeError("guest_phone_numbers is not a list")
    names = (get("guest_first_name"), get("guest_last_name"), get("guest_email"),
             phones[0] if phones else None)
    for value in names:
        if value is not None and type(value) is not str:
            raise TypeError(f"guest field is not a string: {value!r}")
    language = locale or None
    guest = trusted(GuestInfo, {
        "first_name": names[0] or "", "last_name": names[1] or "", "email": names[2],
        "phone": names[3], "country": None, "country_name": None, "language": language,
        "city": None, "postal_code": None, "address": None})
    room = trusted(BookedRoom, {
        "partner_room_type_code": listing, "partner_rate_plan_code": None,
        "check_in": check_in, "check_out": check_out, "adults": adults, "children": children,
        "child_ages": [], "amount": payout, "currency": currency, "nightly_rates": nightly,
        "external_room_id": None, "room_name": None, "rate_plan_name": None, "meal_plan": None,
        "extra_beds": None, "nightly_prices": prices,
        "amount_before_tax": _amount(get, "expected_payout_amount_before_taxes_accurate"),
        "taxes": _amount(get, "pass_through_tax_expected_amount_accurate"),
        "commission": commission, "guest": None, "extras": [], "special_requests": [],
        "smoking": None,
    })
    event = event_of(res)
    return trusted(BookingRecord, {
        "channel": CHANNEL, "external_id": code, "status": status, "event": event,
        "revision": updated or created or "",
        "booked_at": datetime.fromisoformat(booked_text) if (booked_text := booked or created) else None,
        "hotel_code": listing or None, "check_in": check_in, "check_out": check_out,
        "guest": guest, "rooms": [room], "total_amount": payout, "currency": currency,
        "card_last4": card_last4, "comments": scrub_text(message) if message else None,
        "ack_token": f"{code}|{status}", "raw_payload": raw,
        "amount_before_tax": _amount(get, "expected_payout_amount_before_taxes_accurate"),
        "taxes": _amount(get, "pass_through_tax_expected_amount_accurate"),
        "commission": commission,
        "payment": trusted(PaymentInfo, {
            "model": PaymentModel.OTA_COLLECT, "card_type": None, "card_last4": None,
            "card_expiry": None, "activation_date": None, "deactivation_date": None,
            "card_amount": None, "currency": currency, "remarks": None}),
        "extras": extras, "special_requests": [], "cancel_penalties": [],
        "cancel_policy": policy, "loyalty": [], "group_id": None, "source": None,
        "language": language,
    })


def _extra(code: str | None, name: str | None, amount: Decimal, currency: str | None) -> ExtraService:
    return trusted(ExtraService, {"code": code, "name": name, "quantity": None, "nights": None,
                                  "amount": amount, "currency": currency, "included": None})


def decision_request(action: str, reason: str | None = None) -> tuple[str, dict[str, Any]]:
    """(HTTP method, JSON body) of a host decision on `/v2/reservations/{code}`.

    accept/decline answer a pending request (`attempt_action` accept/deny, a decline needs a
    reason); cancel cancels an accepted reservation as host.
    """
    if action == "accept":
        return "PUT", {"attempt_action": "accept"}
    if action == "decline":
        why = reason if reason in DECLINE_REASONS else "dates_not_available"
        return "PUT", {"attempt_action": "deny", "decline_reason": why,
                       "decline_message_to_guest": "Sorry, these dates are no longer available."}
    if action == "cancel":
        return "PUT", {"status_type": "cancelled_by_host", "reason": reason or "host_cancelled"}
    raise ValueError(f"unknown decision {action!r}")


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
