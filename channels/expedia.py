"""Expedia QuickConnect adapter: AR (ARI), BR (retrieval, 125 per call), BC, PARR.

Config: `apiKey` = EQC username, `apiSecret` = EQC password, `hotelId` (or `propertyId`) =
Expedia hotel id. Credentials travel in every XML body and are never logged. Expedia has no
booking status push: update_booking_status answers NOT_SUPPORTED.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar

import httpx

from channels.ari import Part, days_of, plan_requests
from channels.base import (
    AckResult,
    ARIUpdate,
    BookingPage,
    BookingRecord,
    BookingStatus,
    ChannelConfig,
    ChannelError,
    ChannelName,
    PermanentChannelError,
    TransientChannelError,
    UpdateResult,
    failed_acks,
)
from channels.expedia_eqc import (
    MAX_BOOKINGS_PER_RESPONSE,
    MAX_CONFIRMATIONS_PER_REQUEST,
    WHOLE_CALL_ERRORS,
    Issue,
    MappingValidation,
    build_ar,
    build_bc,
    build_br,
    build_parr,
    interpret_ar,
    interpret_bc,
    is_transient_error,
    parse_bookings,
    parse_issues,
    parse_parr,
    parse_root,
)
from channels.http import HttpAdapter
from channels.registry import register
from channels.xmlsafe import parse_xml

__all__ = ["ExpediaAdapter", "MappingValidation", "parse_bookings"]

XML = {"Content-Type": "text/xml; charset=utf-8"}


class ExpediaAdapter(HttpAdapter):
    """EQC over POST text/xml."""

    name = ChannelName.EXPEDIA
    hosts: ClassVar[dict[str, str]] = {"default": "https://services.expediapartnercentral.com"}
    #: AvailRateUpdate elements per request: keeps a request far below EQC's 100 KB (3405).
    max_updates_per_request = 100
    #: EQC refuses a message of more than 5000 updates (3107); one update = one product and date.
    max_product_days_per_request = 5000
    supports_weekdays = True
    max_days_per_request = 366
    horizon_days = 730

    def __init__(self, config: ChannelConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: httpx.Timeout | float | None = None) -> None:
        super().__init__(config, transport=transport, timeout=timeout)
        self.hotel_id = self.require(config.hotel_id or config.property_id, "hotelId")
        self._user = self.require(config.api_key, "apiKey")
        self._password = self.require(config.api_secret, "apiSecret")

    async def _post(self, path: str, body: bytes) -> tuple[bool, list[Issue], bytes]:
        """POST one EQC message. Whole-call failures raise: access, parsing, schema and hotel
        errors PermanentChannelError, system errors (>= 4000 but 4100/4101, 3210)
        TransientChannelError. Business errors and warnings are returned for the caller."""
        response = await self.request("POST", self.url(path), content=body, headers=XML)
        root = parse_xml(response.content, self.name)
        success, issues = parse_issues(root)
        for issue in issues:
            if not issue.error:
                continue
            message = f"{path}: {issue.code} {issue.text}"
            if is_transient_error(issue.code):
                raise TransientChannelError(self.name, message, code=issue.code, status_code=response.status_code)
            if issue.code in WHOLE_CALL_ERRORS or issue.code.startswith(("1", "2")) and len(issue.code) == 4:
                raise PermanentChannelError(self.name, message, code=issue.code, status_code=response.status_code)
        return success, issues, response.content

    # ------------------------------------------------------------ bookings

    async def fetch_bookings(self, start: date | None = None, end: date | None = None,
                             cursor: str | None = None, changed_since: datetime | None = None,
                             ) -> BookingPage:
        """Unconfirmed bookings, at most 125; `has_more` asks for another call after confirming."""
        return await self.fetch_account_bookings([self.hotel_id])

    async def fetch_account_bookings(self, hotel_ids: Sequence[str] | None = None) -> BookingPage:
        """The EQC user's unconfirmed bookings: of every hotel it has access to without a
        hotel (BookingRetrievalRQ's `Hotel` is optional: "bookings for all the hotels to
        which the user has access will be returned"), of one hotel when `hotel_ids` names
        exactly one (the schema takes one `Hotel` at most); each carries its hotel code."""
        hotel = hotel_ids[0] if hotel_ids and len(hotel_ids) == 1 else None
        body = build_br(self._user, self._password, hotel)
        _, issues, content = await self._post("/eqc/br", body)
        errors = [f"{i.code}: {i.text}" for i in issues if i.error]
        if errors:
            raise PermanentChannelError(self.name, "booking retrieval failed: " + "; ".join(errors))
        bookings = parse_root(parse_xml(content, self.name), errors)
        raw_count = len(bookings) + len(errors)
        return BookingPage(bookings=bookings, has_more=raw_count >= MAX_BOOKINGS_PER_RESPONSE, errors=errors)

    async def fetch_booking(self, external_id: str) -> BookingRecord | None:
        """The latest transaction of one booking (BR ParamSet/Booking)."""
        body = build_br(self._user, self._password, self.hotel_id, booking_id=external_id)
        _, _, content = await self._post("/eqc/br", body)
        found = [b for b in parse_root(parse_xml(content, self.name)) if b.external_id == external_id]
        return max(found, key=lambda b: b.revision) if found else None

    def _by_hotel(self, bookings: Sequence[BookingRecord]) -> dict[str, list[BookingRecord]]:
        """A BC names one hotel: an account-wide pull's bookings grouped by theirs."""
        out: dict[str, list[BookingRecord]] = {}
        for b in bookings:
            out.setdefault(b.hotel_code or self.hotel_id, []).append(b)
        return out

    def ack_requests(self, bookings: Sequence[BookingRecord]) -> int:
        """One BC request per 10 confirmations of one hotel."""
        return sum(-(-len(group) // MAX_CONFIRMATIONS_PER_REQUEST)
                   for group in self._by_hotel(bookings).values())

    async def acknowledge(self, bookings: Sequence[BookingRecord], *,
                          confirm_numbers: Mapping[str, str] | None = None) -> list[AckResult]:
        """BC: confirm each transaction with the hotel's confirmation number (default
        `INN-<expedia id>`), at most 10 per request; confirming again is harmless.

        A Warning in the Success (10081 "Update refused", 10100 type mismatch...) means that
        booking is not confirmed: Expedia will fall back to e-mail unless it is fixed."""
        numbers = confirm_numbers or {}
        out: list[AckResult] = []
        chunks = [(hotel, group[first:first + MAX_CONFIRMATIONS_PER_REQUEST])
                  for hotel, group in self._by_hotel(bookings).items()
                  for first in range(0, len(group), MAX_CONFIRMATIONS_PER_REQUEST)]
        for hotel, chunk in chunks:
            triples = [(b.external_id, b.ack_token or b.status, numbers.get(b.external_id) or f"INN-{b.external_id}")
                       for b in chunk]
            try:
                success, issues, _ = await self._post("/eqc/bc", build_bc(self._user, self._password, hotel, triples))
            except ChannelError as exc:
                out.extend(failed_acks([b.external_id for b in chunk], exc))
                continue
            refused = interpret_bc([b.external_id for b in chunk], success, issues)
            for b in chunk:
                reason = refused.get(b.external_id)
                out.append(AckResult(external_id=b.external_id, ok=reason is None,
                                     error=reason[0] if reason else None))
        return out

    # ------------------------------------------------------------ ARI

    async def push_ari(self, updates: Sequence[ARIUpdate]) -> list[UpdateResult]:
        """AR with several AvailRateUpdate per request; 3203/3204 and 7013 mapped per update."""
        today = datetime.now(UTC).date()
        requests, outside = plan_requests(
            updates, max_days=self.max_days_per_request, max_updates=self.max_updates_per_request,
            first=today - timedelta(days=1), last=today + timedelta(days=self.horizon_days))
        errors: dict[int, list[tuple[str, str, bool]]] = {i: [] for i in range(len(updates))}
        warnings: dict[int, list[str]] = {i: [] for i in range(len(updates))}
        for index in outside:
            errors[index].append(("OUT_OF_HORIZON", "dates in the past or beyond 2 years", False))
        for parts in self._within_day_budget(requests):
            body = build_ar(self._user, self._password, self.hotel_id, [p.update for p in parts])
            _, issues, _ = await self._post("/eqc/ar", body)
            for p, verdict in zip(parts, interpret_ar([p.update for p in parts], issues), strict=True):
                errors[p.index].extend(verdict.errors)
                warnings[p.index].extend(verdict.warnings)
        return [
            UpdateResult(update=u, ok=not errors[i], error_code=errors[i][0][0] if errors[i] else None,
                         error=_summary(errors[i]), transient=bool(errors[i]) and all(tr for _, _, tr in errors[i]),
                         warnings=warnings[i])
            for i, u in enumerate(updates)
        ]

    def _within_day_budget(self, requests: list[list[Part]]) -> list[list[Part]]:
        """Split requests so none carries more product-days than EQC accepts (3107)."""
        out: list[list[Part]] = []
        for parts in requests:
            current: list[Part] = []
            days = 0
            for part in parts:
                size = sum(1 for _ in days_of(part.update))
                if current and days + size > self.max_product_days_per_request:
                    out.append(current)
                    current, days = [], 0
                current.append(part)
                days += size
            if current:
                out.append(current)
        return out

    # ------------------------------------------------------------ product

    async def validate_mappings(self, room_codes: Sequence[str], rate_codes: Sequence[str]) -> MappingValidation:
        """PARR: which mapped room type / rate plan ids Expedia does not know or has deactivated."""
        _, _, content = await self._post("/eqc/parr", build_parr(self._user, self._password, self.hotel_id))
        rooms, plans = parse_parr(parse_xml(content, self.name))
        result = MappingValidation(
            ok=True,
            unknown_room_types=[c for c in room_codes if c not in rooms],
            unknown_rate_plans=[c for c in rate_codes if c not in plans],
            inactive_room_types=[c for c in room_codes if rooms.get(c, "Active") != "Active"],
            inactive_rate_plans=[c for c in rate_codes if plans.get(c, "Active") != "Active"],
            room_types=rooms, rate_plans=plans,
        )
        result.ok = not (result.unknown_room_types or result.unknown_rate_plans
                         or result.inactive_room_types or result.inactive_rate_plans)
        return result

    async def update_booking_status(self, external_id: str, status: BookingStatus) -> UpdateResult:
        return UpdateResult(ok=False, error_code="NOT_SUPPORTED",
                            error=f"Expedia QuickConnect has no booking status push ({status.value})")


def _summary(errors: Sequence[tuple[str, str, bool]], limit: int = 3) -> str | None:
    """The first refusals of an update (a 7013 per stay date can repeat 20 times)."""
    if not errors:
        return None
    text = "; ".join(f"{code}: {message}" for code, message, _ in errors[:limit])
    return text + (f" (+{len(errors) - limit} more)" if len(errors) > limit else "")


register(ChannelName.EXPEDIA, ExpediaAdapter)
