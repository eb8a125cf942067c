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

from channels.ari import days_of, plan_requests
from channels.base import (
    AckResult,
    ARIUpdate,
    BookingPage,
    BookingRecord,
    BookingStatus,
    ChannelConfig,
    ChannelName,
    PermanentChannelError,
    UpdateResult,
)
from channels.expedia_eqc import (
    MAX_BOOKINGS_PER_RESPONSE,
    Issue,
    MappingValidation,
    build_ar,
    build_bc,
    build_br,
    build_parr,
    ids_in,
    parse_bookings,
    parse_issues,
    parse_parr,
    parse_root,
    stay_refs,
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
    max_updates_per_request = 100  # *unverified*: EQC documents a message size limit instead
    supports_weekdays = True
    max_days_per_request = 366  # *unverified*
    horizon_days = 730

    def __init__(self, config: ChannelConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: httpx.Timeout | float | None = None) -> None:
        super().__init__(config, transport=transport, timeout=timeout)
        self.hotel_id = self.require(config.hotel_id or config.property_id, "hotelId")
        self._user = self.require(config.api_key, "apiKey")
        self._password = self.require(config.api_secret, "apiSecret")

    async def _post(self, path: str, body: bytes) -> tuple[bool, list[Issue], bytes]:
        """POST one EQC message; whole-call failures (auth, bad XML) raise PermanentChannelError."""
        response = await self.request("POST", self.url(path), content=body, headers=XML)
        root = parse_xml(response.content, self.name)
        success, issues = parse_issues(root)
        for issue in issues:
            if issue.error and ((issue.code.startswith("1") and len(issue.code) == 4) or issue.code == "2000"):
                raise PermanentChannelError(self.name, f"{path}: {issue.code} {issue.text}", code=issue.code,
                                            status_code=response.status_code)
        return success, issues, response.content

    # ------------------------------------------------------------ bookings

    async def fetch_bookings(self, start: date | None = None, end: date | None = None,
                             cursor: str | None = None) -> BookingPage:
        """Unconfirmed bookings, at most 125; `has_more` asks for another call after confirming."""
        body = build_br(self._user, self._password, self.hotel_id)
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

    async def acknowledge(self, bookings: Sequence[BookingRecord], *,
                          confirm_numbers: Mapping[str, str] | None = None) -> list[AckResult]:
        """BC: confirm each transaction with the hotel's confirmation number (default
        `INN-<expedia id>`); confirming again is harmless."""
        if not bookings:
            return []
        numbers = confirm_numbers or {}
        triples = [(b.external_id, b.ack_token or b.status, numbers.get(b.external_id) or f"INN-{b.external_id}")
                   for b in bookings]
        success, issues, _ = await self._post("/eqc/bc", build_bc(self._user, self._password, self.hotel_id, triples))
        failed: dict[str, str] = {}
        general: str | None = None
        for issue in issues:
            named = [b.external_id for b in bookings if b.external_id in issue.text]
            for booking_id in named:
                failed[booking_id] = f"{issue.code}: {issue.text}"
            if not named and issue.error:
                general = f"{issue.code}: {issue.text}"
        out = []
        for b in bookings:
            error = failed.get(b.external_id) or general or (None if success else "confirmation refused")
            out.append(AckResult(external_id=b.external_id, ok=error is None, error=error))
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
        for parts in requests:
            body = build_ar(self._user, self._password, self.hotel_id, [p.update for p in parts])
            _, issues, _ = await self._post("/eqc/ar", body)
            request_errors = [i for i in issues if i.error]
            for issue in request_errors:
                bad = ids_in(issue.text)
                for p in parts:
                    key = p.update.partner_room_type_code if issue.code == "3203" else p.update.partner_rate_plan_code
                    if issue.code in ("3203", "3204") and key in bad:
                        errors[p.index].append((issue.code, issue.text, False))
            for p in parts:
                if request_errors and not errors[p.index]:
                    # EQC applies a message all or nothing: innocent updates must be re-sent.
                    errors[p.index].append(("NOT_APPLIED", "another update of the request was rejected", True))
            for issue in issues:
                if issue.error:
                    continue
                refs = stay_refs(issue.text)
                for p in parts:
                    u = p.update
                    hit = any(room == u.partner_room_type_code and plan == (u.partner_rate_plan_code or "")
                              and day in set(days_of(u)) for room, plan, day in refs)
                    if hit:
                        errors[p.index].append((issue.code, issue.text, False))
                    elif not refs:
                        warnings[p.index].append(f"{issue.code}: {issue.text}")
        return [
            UpdateResult(update=u, ok=not errors[i], error_code=errors[i][0][0] if errors[i] else None,
                         error="; ".join(f"{c}: {t}" for c, t, _ in errors[i]) or None,
                         transient=bool(errors[i]) and all(tr for _, _, tr in errors[i]),
                         warnings=warnings[i])
            for i, u in enumerate(updates)
        ]

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


register(ChannelName.EXPEDIA, ExpediaAdapter)
