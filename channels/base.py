"""The adapter contract every OTA channel implements, and the project's own boundary models.

Adapters translate between these models and each partner's wire format; nothing outside
`channels/` ever sees partner XML/JSON. Every operation is batch-shaped: one call fetches a
page of bookings or pushes a list of ARI updates, and results are reported per update so a
partial success is visible.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

if TYPE_CHECKING:
    from channels.tokens import TokenStore


class ChannelName(StrEnum):
    """The partners innsync speaks to (the value is the seed's `channelName`)."""

    BOOKING_COM = "booking.com"
    AGODA = "agoda"
    EXPEDIA = "expedia"
    AIRBNB = "airbnb"


class ChannelConfig(BaseModel):
    """The seed's ChannelConfig. `endpoint` replaces every partner base URL of the adapter."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    api_key: SecretStr | None = Field(default=None, alias="apiKey")
    api_secret: SecretStr | None = Field(default=None, alias="apiSecret")
    property_id: str | None = Field(default=None, alias="propertyId")
    endpoint: str | None = None
    hotel_id: str | None = Field(default=None, alias="hotelId")
    #: Shared secret partners sign (Airbnb) or present (Agoda) webhook pushes with.
    webhook_secret: SecretStr | None = Field(default=None, alias="webhookSecret")


# ---------------------------------------------------------------- bookings in


class BookingEvent(StrEnum):
    NEW = "new"
    MODIFIED = "modified"
    CANCELLED = "cancelled"


class GuestInfo(BaseModel):
    first_name: str = ""
    last_name: str = ""
    email: str | None = None
    phone: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2 only; never a country name
    #: The country as the partner wrote it when it is a name, not a code (Agoda's nationality).
    country_name: str | None = None
    language: str | None = None  # the guest's language as the partner gives it (e.g. "en")
    city: str | None = None
    postal_code: str | None = None
    address: str | None = None


class NightlyPrice(BaseModel):
    """One night of one room, as the partner prices it.

    `amount` is what the night costs the guest as the partner states it (Expedia: baseRate +
    extraPersonFees + hotelServiceFees; Booking.com: Rate/Total AmountAfterTax; Agoda: the
    `<price>` of that date). The parts are kept where the partner gives them.
    """

    night: date
    amount: Decimal
    amount_before_tax: Decimal | None = None
    amount_after_tax: Decimal | None = None
    base: Decimal | None = None
    extra_person_fees: Decimal | None = None
    service_fees: Decimal | None = None
    currency: str | None = None
    promotion: str | None = None  # promo name/code applied to this night


class ExtraService(BaseModel):
    """An extra sold with the booking (breakfast, parking, extra bed...) with its price."""

    code: str | None = None
    name: str | None = None
    quantity: int | None = None
    nights: int | None = None
    amount: Decimal | None = None  # total price of the service for the stay
    currency: str | None = None
    included: bool | None = None  # included in the room price


class SpecialRequest(BaseModel):
    """A guest request; `code` where the partner codes it (Expedia SpecialRequest@code)."""

    code: str | None = None
    text: str


class CancelPenalty(BaseModel):
    """A cancellation penalty: from `deadline` on, cancelling costs `amount` (or `percent` of
    the stay, or `nights` nights)."""

    deadline: datetime | None = None
    amount: Decimal | None = None
    percent: Decimal | None = None
    nights: int | None = None
    currency: str | None = None
    non_refundable: bool | None = None
    description: str | None = None


class PaymentModel(StrEnum):
    OTA_COLLECT = "ota_collect"  # the partner charges the guest and pays the hotel
    HOTEL_COLLECT = "hotel_collect"  # the hotel charges the guest (card given as guarantee)
    VIRTUAL_CARD = "virtual_card"  # the partner pays with a virtual card the hotel charges
    UNKNOWN = "unknown"


class PaymentInfo(BaseModel):
    """How the booking is paid. Never a full card number or a security code (PCI DSS)."""

    model: PaymentModel = PaymentModel.UNKNOWN
    card_type: str | None = None  # e.g. VI, MC, AX
    card_last4: str | None = None
    card_expiry: str | None = None  # as the partner sends it (MMYY / MM/YY)
    #: Virtual cards: the window in which the hotel may charge the card, and its balance.
    activation_date: date | None = None
    deactivation_date: date | None = None
    card_amount: Decimal | None = None
    currency: str | None = None
    remarks: str | None = None


class BookedRoom(BaseModel):
    """One room of a (possibly multi-room) booking, in the partner's own codes."""

    partner_room_type_code: str
    partner_rate_plan_code: str | None = None
    check_in: date | None = None
    check_out: date | None = None
    adults: int = 1
    children: int = 0
    child_ages: list[int] = Field(default_factory=list)
    amount: Decimal | None = None  # the room's total for the stay (after tax when given)
    currency: str | None = None
    #: The night's total price (= NightlyPrice.amount), kept for the PMS's rate lines.
    nightly_rates: dict[date, Decimal] = Field(default_factory=dict)
    #: The partner's id of this room within the booking (Booking.com roomreservation_id,
    #: Agoda room index...), when it has one.
    external_room_id: str | None = None
    room_name: str | None = None
    rate_plan_name: str | None = None
    meal_plan: str | None = None
    extra_beds: int | None = None
    nightly_prices: list[NightlyPrice] = Field(default_factory=list)
    amount_before_tax: Decimal | None = None
    taxes: Decimal | None = None
    commission: Decimal | None = None
    #: The guest staying in this room, when the partner names one apart from the booker.
    guest: GuestInfo | None = None
    extras: list[ExtraService] = Field(default_factory=list)
    special_requests: list[SpecialRequest] = Field(default_factory=list)
    smoking: bool | None = None


class BookingRecord(BaseModel):
    """One booking message from a partner, already PCI-masked.

    `raw_payload` is the partner's message (as a JSON-able dict) with card numbers masked to
    the last 4 digits and security codes removed: it is safe to store and log.
    `revision` orders messages for one booking (partner revision / last-modified /
    transaction time, ISO-8601 or a zero-padded counter): compare as strings.
    `ack_token` is whatever the adapter needs to acknowledge/confirm this message.
    """

    channel: ChannelName
    external_id: str
    event: BookingEvent
    status: str  # partner status as given (Book/Commit/Modify/Cancel, confirm/amend/cancel...)
    revision: str
    booked_at: datetime | None = None
    hotel_code: str | None = None
    check_in: date | None = None  # None on cancels that omit dates: keep the stored ones
    check_out: date | None = None
    guest: GuestInfo = Field(default_factory=GuestInfo)
    rooms: list[BookedRoom] = Field(default_factory=list)
    total_amount: Decimal | None = None
    currency: str | None = None
    card_last4: str | None = None
    comments: str | None = None
    ack_token: str | None = None
    raw_payload: dict[str, Any] = Field(default_factory=dict)
    # ---- what hotels need beyond the stay (issue 10); every field optional, partner-filled.
    #: Booking-level amounts: before tax, taxes, and the partner's commission.
    amount_before_tax: Decimal | None = None
    taxes: Decimal | None = None
    commission: Decimal | None = None
    payment: PaymentInfo = Field(default_factory=PaymentInfo)
    extras: list[ExtraService] = Field(default_factory=list)
    special_requests: list[SpecialRequest] = Field(default_factory=list)
    cancel_penalties: list[CancelPenalty] = Field(default_factory=list)
    cancel_policy: str | None = None  # the policy's code or text as the partner gives it
    #: Loyalty/programme flags as partner-named strings ("genius", "expedia_vip", ...).
    loyalty: list[str] = Field(default_factory=list)
    #: Bookings the partner splits per room (Expedia: one booking per room of a multi-room
    #: order) share this id so the PMS can link them.
    group_id: str | None = None
    source: str | None = None  # the selling brand/point of sale (Expedia@source, Hotels.com...)
    language: str | None = None
    #: What the hotel receives (tax-inclusive) where the partner states it apart from the
    #: guest price (Agoda `net_inclusive_amt`); added for Agoda, None elsewhere.
    net_amount: Decimal | None = None

    #: message_digest's last answer and the payload it was computed from: the digest is
    #: asked for several times per record (planning, acknowledging, counting). A slot, not a
    #: field or private attribute: equality, dumps and copies never see it.
    __slots__ = ("_digest_memo",)

    def message_digest(self) -> str | None:
        """A digest of the partner's message as delivered (its masked raw payload), None
        without one. The same message delivered again has the same digest whatever its
        envelope says (Booking.com's revision is the answer's TimeStamp, new on every fetch);
        a later message of the booking has another."""
        if not self.raw_payload:
            return None
        memo: tuple[Any, str] | None = getattr(self, "_digest_memo", None)
        if memo is not None and memo[0] is self.raw_payload:
            return memo[1]
        content = json.dumps(self.raw_payload, sort_keys=True, default=str).encode()
        digest = hashlib.blake2b(content, digest_size=8).hexdigest()
        _setattr(self, "_digest_memo", (self.raw_payload, digest))
        return digest


_M = TypeVar("_M", bound=BaseModel)
_setattr = object.__setattr__
_new = object.__new__  # BaseModel defines no __new__
_FIELD_COUNTS: dict[type[BaseModel], int] = {}
_DEFAULTS: dict[type[BaseModel], list[tuple[str, Any, Any]]] = {}


def trusted(model: type[_M], values: dict[str, Any]) -> _M:
    """A model instance from values a parser already converted and checked: no validation.

    `values` holds fields each of its declared type (dates as `date`, amounts as
    finite `Decimal`, ints as `int`, enums as members); tests check parsed records survive
    `model_validate(record.model_dump())`. Equivalent to `model_construct(**values)` for such
    input without its per-field Python loop: per BookingRecord (pydantic 2.14) ~1 µs here,
    ~3 µs validating, ~6 µs model_construct. Optional fields left out get their defaults.
    """
    count = _FIELD_COUNTS.get(model)
    if count is None:
        # Class attribute lookups on pydantic models go through the metaclass (~0.3 µs).
        count = _FIELD_COUNTS[model] = len(model.__pydantic_fields__)
        _DEFAULTS[model] = [
            (name, info.default_factory, info.default)
            for name, info in model.__pydantic_fields__.items() if not info.is_required()
        ]
    if len(values) != count:
        # Fill the defaults of fields left out (fresh containers from their factories);
        # model_construct would do the same at ~100x the cost. A copy: callers' dicts stay
        # as they were, and no default container is shared between two records.
        values = dict(values)
        for name, factory, default in _DEFAULTS[model]:
            if name not in values:
                values[name] = factory() if factory is not None else default  # type: ignore[call-arg]
        if len(values) != count:
            return model.model_construct(**values)  # a required field is missing: let it say
    obj = _new(model)
    _setattr(obj, "__dict__", values)
    _setattr(obj, "__pydantic_fields_set__", set(values))
    _setattr(obj, "__pydantic_extra__", None)
    _setattr(obj, "__pydantic_private__", None)
    return obj


_AMOUNTS: dict[str, Decimal] = {}


def parse_amount(text: str) -> Decimal:
    """A partner amount string as a finite Decimal; ValueError/InvalidOperation otherwise.

    Records built with `trusted` skip pydantic's check, which refuses NaN and Infinity, so it
    is done here. Prices repeat across nights and bookings: recent ones are remembered
    (Decimals are immutable, so sharing them is safe).
    """
    amount = _AMOUNTS.get(text)
    if amount is None:
        amount = Decimal(text)
        if not amount.is_finite():
            raise ValueError(f"amount {text!r} is not a finite number")
        if len(_AMOUNTS) >= 4096:
            _AMOUNTS.clear()
        _AMOUNTS[text] = amount
    return amount


class BookingPage(BaseModel):
    """One page of bookings. `has_more` tells the caller to fetch again (after acking)."""

    bookings: list[BookingRecord]
    has_more: bool = False
    cursor: str | None = None
    errors: list[str] = Field(default_factory=list)  # per-item problems that did not stop the page
    #: The partner lists by window, not as a queue: the last page of a traversal is the end,
    #: and acknowledging releases nothing more (no pulling again after acking; Airbnb).
    final: bool = False


class AckResult(BaseModel):
    external_id: str
    ok: bool
    error: str | None = None
    #: The call failed, not the partner's verdict on this booking (a 5xx, a timeout, an
    #: unreadable answer): acknowledging again is harmless, so it may be repeated.
    retry: bool = False


def failed_acks(external_ids: Iterable[str], exc: ChannelError) -> list[AckResult]:
    """One partner call that acknowledged these bookings failed as a whole: a verdict each,
    so the acks of the adapter's other calls are kept. Whether the call was applied is unknown
    after a timeout or a garbled answer; those and transient errors may be repeated."""
    # Not a token endpoint's "wait" (retry_in_run False): nothing was sent, nothing to repeat.
    retry = (exc.transient and exc.retry_in_run) or isinstance(
        exc, MalformedPayloadError)
    return [AckResult(external_id=e, ok=False, error=str(exc), retry=retry) for e in external_ids]


# ---------------------------------------------------------------- ARI out


class ARIUpdate(BaseModel):
    """Availability, rate and restrictions for one room type (and rate plan) over a range.

    Dates are hotel-local, `start`..`end` inclusive. Fields left None are not sent.
    `weekdays` (0=Mon..6=Sun) limits the range to those days where the partner supports it.
    """

    partner_room_type_code: str
    partner_rate_plan_code: str | None = None
    start: date
    end: date
    weekdays: frozenset[int] | None = None
    available: int | None = None
    rate: Decimal | None = None
    currency: str | None = None
    min_los: int | None = None
    max_los: int | None = None
    closed_to_arrival: bool | None = None
    closed_to_departure: bool | None = None
    stop_sell: bool | None = None

    model_config = ConfigDict(frozen=True)


class UpdateResult(BaseModel):
    """The partner's verdict on one ARIUpdate (or one booking status update)."""

    update: ARIUpdate | None = None
    ok: bool
    error_code: str | None = None
    error: str | None = None
    transient: bool = False
    warnings: list[str] = Field(default_factory=list)


class BookingStatus(StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    CHECKED_IN = "checked_in"
    CHECKED_OUT = "checked_out"


# ---------------------------------------------------------------- errors


class ChannelError(Exception):
    """A partner call failed. `transient` errors may be retried; permanent ones never."""

    transient: bool = False
    #: False for errors that must end the run at once instead of being retried inside it
    #: (a token endpoint's Retry-After: channels.tokens.TokenRateLimitedError).
    retry_in_run: bool = True

    def __init__(
        self,
        channel: str,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{channel}: {message}")
        self.channel = channel
        self.message = message
        self.status_code = status_code
        self.code = code
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, channel: str, response: httpx.Response, detail: str = "") -> ChannelError:
        """Classify an HTTP error answer: 429 and 5xx are transient, other 4xx permanent."""
        status = response.status_code
        text = detail or response.text[:300]
        if status == 429 or status >= 500:
            return TransientChannelError(
                channel,
                f"HTTP {status}: {text}",
                status_code=status,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        return PermanentChannelError(channel, f"HTTP {status}: {text}", status_code=status)


class TransientChannelError(ChannelError):
    """Connect errors, timeouts, 429, 5xx: retry with backoff, honouring `retry_after`."""

    transient = True


class PermanentChannelError(ChannelError):
    """Other 4xx and partner validation errors: retrying cannot help."""


class MalformedPayloadError(PermanentChannelError):
    """The partner sent something we cannot parse (or that looks hostile). Nothing was stored."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# ---------------------------------------------------------------- the protocol


@runtime_checkable
class AccountWideAdapter(Protocol):
    """A partner whose booking pull serves a whole account (Booking.com's provider queue,
    Expedia's EQC user): one call returns every connected hotel's bookings, each with its
    hotel code."""

    async def fetch_account_bookings(self, hotel_ids: Sequence[str] | None = None
                                     ) -> BookingPage: ...


@runtime_checkable
class ChannelAdapter(Protocol):
    """What every partner adapter offers. All I/O is async over one long-lived httpx client."""

    name: ChannelName
    #: Most ARI updates the partner accepts in one request (the adapter splits beyond it).
    max_updates_per_request: int

    async def fetch_bookings(
        self, start: date | None = None, end: date | None = None, cursor: str | None = None,
        changed_since: datetime | None = None,
    ) -> BookingPage:
        """Fetch one page of new/modified/cancelled bookings (for partners with a window,
        `start`..`end` is the booking-date window). `changed_since` narrows the page to
        bookings the partner changed at or after that instant, where the partner can filter
        by change time (Airbnb); queue partners, which deliver only what is unacknowledged,
        ignore it."""
        ...

    def fetch_requests(self, cursor: str | None = None) -> int:
        """How many partner requests `fetch_bookings(cursor=cursor)` sends (one, except for
        partners that list bookings per room: Airbnb reads several listings at once), so the
        caller takes that many rate-limit slots."""
        ...

    async def fetch_booking(self, external_id: str) -> BookingRecord | None:
        """Fetch one booking by partner id (webhook/hint follow-up)."""
        ...

    async def acknowledge(self, bookings: Sequence[BookingRecord]) -> list[AckResult]:
        """Acknowledge/confirm messages after they were committed. One result per booking."""
        ...

    def ack_requests(self, bookings: Sequence[BookingRecord]) -> int:
        """How many partner requests `acknowledge(bookings)` sends (0: nothing to send), so
        the caller takes that many rate-limit slots and none for a no-op."""
        ...

    async def push_ari(self, updates: Sequence[ARIUpdate]) -> list[UpdateResult]:
        """Push availability/rates/restrictions. Compresses and splits per partner limits;
        one result per input update."""
        ...

    async def update_booking_status(
        self, external_id: str, status: BookingStatus
    ) -> UpdateResult:
        """Push a PMS status change for one booking (not applicable ones return ok=False
        with error_code='NOT_SUPPORTED')."""
        ...

    def use_token_store(self, store: TokenStore) -> None:
        """Keep partner tokens in `store` (shared by every process and run) instead of in this
        instance (adapters without tokens ignore it)."""
        ...

    async def aclose(self) -> None: ...


AriKind = Literal["availability", "rates", "both"]
