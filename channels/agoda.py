"""Agoda YCS adapter: SetARI V2 (with 207 partial success), GetBookingList + GetBookingDetail.

Wire details live in `channels/agoda_wire.py`. Acknowledgement uses the simulated type 7 (see
there): Agoda itself only exposes the `acknowledge` flag on GetBookingList rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import httpx

from channels import agoda_wire as wire
from channels.agoda_wire import parse_bookings
from channels.ari import compress, expand, plan_requests
from channels.ari_origins import combine, compress_with_origins
from channels.base import (
    AckResult,
    ARIUpdate,
    BookingPage,
    BookingRecord,
    BookingStatus,
    ChannelConfig,
    ChannelError,
    ChannelName,
    MalformedPayloadError,
    UpdateResult,
    failed_acks,
)
from channels.http import HttpAdapter

__all__ = ["AgodaAdapter", "parse_bookings"]

_PARTIAL_OK = frozenset({207, 400})  # SetARI answers these with per-update errors in the body
#: GetBookingList: "LookBack = 90 Days, Now - From <= 90 Days" (Agoda's request example).
_MAX_LOOKBACK_DAYS = wire.MAX_LIST_LOOKBACK_DAYS


def _describe(code: str, description: str) -> str:
    """`code description`, the documented meaning standing in for an empty description."""
    return f"{code} {description or wire.DOCUMENTED_ERRORS.get(code, '')}".strip()


class AgodaAdapter(HttpAdapter):
    """ChannelAdapter for Agoda YCS (one property per adapter)."""

    name = ChannelName.AGODA
    hosts = {"default": "https://supply.agoda.com"}  # *unverified*: overridden by `endpoint`
    #: Wire <update> elements per SetARI request (Agoda publishes no limit; kept modest).
    max_updates_per_request = 200
    supports_weekdays = True

    def __init__(
        self,
        config: ChannelConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float | None = None,
        today: Callable[[], date] | None = None,
        utc_offset: timedelta = timedelta(0),
        default_currency: str = "USD",
        occupancy: int = 1,
        page_size: int = 500,
        window_days: int = 7,
        list_type: int = wire.TYPE_BOOKING_LIST_V2,
    ) -> None:
        super().__init__(config, transport=transport, timeout=timeout)
        self.tz = timezone(utc_offset)
        self._today = today or (lambda: datetime.now(self.tz).date())
        self.default_currency = default_currency
        self.occupancy = occupancy
        self.page_size = page_size
        self.window_days = window_days
        self.list_type = list_type

    @property
    def property_id(self) -> str:
        return self.require(self.config.property_id or self.config.hotel_id, "propertyId")

    async def _post(self, body: bytes, ok_statuses: frozenset[int] = frozenset()) -> httpx.Response:
        key = self.require(self.config.api_key, "apiKey")
        return await self.request(
            "POST", self.url("/api"), params={"apiKey": key}, content=body,
            headers={"Content-Type": "text/xml; charset=utf-8"}, ok_statuses=ok_statuses,
        )

    # ------------------------------------------------------------ bookings

    def windows(self, start: date, end: date) -> list[tuple[datetime, datetime]]:
        """GetBookingList windows of at most 90 days covering start..end (hotel-local)."""
        out = []
        day = start
        while day <= end:
            last = min(end, day + timedelta(days=wire.MAX_LIST_WINDOW_DAYS - 1))
            out.append((datetime.combine(day, time(0, 0), self.tz),
                        datetime.combine(last, time(23, 59, 59), self.tz)))
            day = last + timedelta(days=1)
        return out

    async def list_pending(self, start: date, end: date) -> tuple[list[wire.ListRow], list[str]]:
        """Unacknowledged rows of every window (deduplicated), and notes on clipped windows."""
        notes: list[str] = []
        today = self._today()
        # from 00:00 of this day is within "now - 90 days" whatever the time of day now
        oldest = today - timedelta(days=_MAX_LOOKBACK_DAYS - 1)
        if start < oldest:
            notes.append(f"window start {start} clipped to {oldest}: Agoda lists at most {_MAX_LOOKBACK_DAYS} days back")
            start = oldest
        rows: dict[str, wire.ListRow] = {}
        for lo, hi in self.windows(start, end):
            body = wire.build_booking_list([self.property_id], lo, hi, type_=self.list_type)
            response = await self._post(body)
            for row in wire.parse_booking_list(response.content):
                # Duplicate rows (re-delivery) collapse; the newest last_action wins.
                seen = rows.get(row.booking_id)
                if not row.acknowledged and (seen is None or row.last_action > seen.last_action):
                    rows[row.booking_id] = row
        ordered = sorted(rows.values(), key=lambda r: (len(r.booking_id), r.booking_id))
        return ordered, notes

    async def details(self, booking_ids: Sequence[str]) -> list[BookingRecord]:
        """GetBookingDetail in batches of at most 50 ids (one property per call)."""
        out: list[BookingRecord] = []
        for i in range(0, len(booking_ids), wire.MAX_DETAIL_IDS):
            batch = booking_ids[i : i + wire.MAX_DETAIL_IDS]
            response = await self._post(wire.build_booking_detail(self.property_id, batch))
            out.extend(parse_bookings(response.content))
        return out

    async def fetch_bookings(
        self, start: date | None = None, end: date | None = None, cursor: str | None = None,
        changed_since: datetime | None = None,
    ) -> BookingPage:
        """Unacknowledged bookings whose last action falls in start..end (default: last week;
        `changed_since` is ignored: the list holds only what is unacknowledged).

        `cursor` is the last booking id of the previous page; acknowledged bookings drop out
        of the list, so draining with the cursor never skips one.
        """
        end = end or self._today()
        start = start or end - timedelta(days=self.window_days)
        rows, notes = await self.list_pending(start, end)
        if cursor:
            after = (len(cursor), cursor)
            rows = [r for r in rows if (len(r.booking_id), r.booking_id) > after]
        page, rest = rows[: self.page_size], rows[self.page_size :]
        records = await self.details([r.booking_id for r in page])
        unique: dict[tuple[str, str], BookingRecord] = {}
        for rec in records:
            unique.setdefault((rec.external_id, rec.revision), rec)
        found = {rec.external_id for rec in unique.values()}
        errors = notes + [f"booking {r.booking_id}: no detail returned" for r in page if r.booking_id not in found]
        return BookingPage(
            bookings=list(unique.values()), has_more=bool(rest),
            cursor=page[-1].booking_id if rest and page else None, errors=errors,
        )

    async def fetch_booking(self, external_id: str) -> BookingRecord | None:
        """GetBookingDetail for one id (BookingHint follow-up); None if Agoda does not know it."""
        records = await self.details([external_id])
        return next((r for r in records if r.external_id == external_id), None)

    def _ack_batches(self, bookings: Sequence[BookingRecord]
                     ) -> tuple[dict[int, AckResult], dict[str, list[tuple[int, str, str]]]]:
        """Bookings without an ack token (failed at once), the rest per property."""
        results: dict[int, AckResult] = {}
        by_property: dict[str, list[tuple[int, str, str]]] = {}
        for i, rec in enumerate(bookings):
            prop, _, rest = (rec.ack_token or "").partition("|")
            bid, _, last_action = rest.partition("|")
            if not bid:
                results[i] = AckResult(external_id=rec.external_id, ok=False, error="missing ack token")
                continue
            by_property.setdefault(prop or self.property_id, []).append((i, bid, last_action))
        return results, by_property

    def ack_requests(self, bookings: Sequence[BookingRecord]) -> int:
        """One request per property and 50 bookings."""
        _, by_property = self._ack_batches(bookings)
        return sum(-(-len(items) // wire.MAX_DETAIL_IDS) for items in by_property.values())

    async def acknowledge(self, bookings: Sequence[BookingRecord]) -> list[AckResult]:
        """Clear the `acknowledge` flag (simulated type 7) for each booking's last action."""
        results, by_property = self._ack_batches(bookings)
        for prop, items in by_property.items():
            for j in range(0, len(items), wire.MAX_DETAIL_IDS):
                batch = items[j : j + wire.MAX_DETAIL_IDS]
                try:
                    response = await self._post(wire.build_ack(prop, [(b, la) for _, b, la in batch]))
                    verdicts = wire.parse_ack_response(response.content)
                except ChannelError as exc:
                    for (i, _, _), verdict in zip(batch, failed_acks([b for _, b, _ in batch], exc), strict=True):
                        results[i] = verdict
                    continue
                for i, bid, _ in batch:
                    if bid not in verdicts:
                        results[i] = AckResult(external_id=bid, ok=False, error="not in Agoda's answer")
                    else:
                        err = verdicts[bid]
                        results[i] = AckResult(external_id=bid, ok=err is None, error=err)
        return [results[i] for i in range(len(bookings))]

    async def update_booking_status(self, external_id: str, status: BookingStatus) -> UpdateResult:
        """Agoda takes no booking status changes through YCS (no-shows go via the extranet)."""
        return UpdateResult(ok=False, error_code="NOT_SUPPORTED",
                            error=f"Agoda YCS has no call to set booking status {status.value}")

    # ------------------------------------------------------------ ARI

    def _invalid(self, u: ARIUpdate) -> str | None:
        if u.end < u.start:
            return "start is after end"
        rate_fields = u.rate is not None or u.min_los is not None or u.max_los is not None
        if rate_fields and not u.partner_rate_plan_code:
            return "rate, min_los and max_los need a partner_rate_plan_code on Agoda"
        if u.min_los is not None and u.max_los is not None and u.max_los < u.min_los:
            return "max_los is less than min_los"
        return None

    def to_wire(self, u: ARIUpdate) -> list[wire.WireUpdate]:
        """Inventory and/or rate <update>s for one (compressed, clipped) ARIUpdate."""
        dows = tuple(sorted(d + 1 for d in u.weekdays)) if u.weekdays is not None else ()
        out: list[wire.WireUpdate] = []
        # Closures on a rate plan stay on that rate plan; without one they close the room.
        on_rate = u.partner_rate_plan_code is not None
        closed, cta, ctd = u.stop_sell, u.closed_to_arrival, u.closed_to_departure
        has_closure = closed is not None or cta is not None or ctd is not None
        if u.available is not None or (has_closure and not on_rate):
            room_level = not on_rate
            out.append(wire.WireUpdate(
                "inventory", u.partner_room_type_code, None, u.start, u.end, dows, allotment=u.available,
                closed=closed if room_level else None, cta=cta if room_level else None,
                ctd=ctd if room_level else None,
            ))
        if on_rate and (u.rate is not None or u.min_los is not None or u.max_los is not None or has_closure):
            out.append(wire.WireUpdate(
                "rate", u.partner_room_type_code, u.partner_rate_plan_code, u.start, u.end, dows,
                closed=closed, cta=cta, ctd=ctd, price=u.rate, currency=u.currency or self.default_currency,
                occupancy=self.occupancy, min_los=u.min_los, max_los=u.max_los,
            ))
        return out

    async def push_ari(self, updates: Sequence[ARIUpdate]) -> list[UpdateResult]:
        """SetARI V2: compress (weekday patterns), clip at 730 days, split, map 207 errors back.

        Raises the request error when the first request fails outright (nothing applied);
        later request failures become failed results for the updates they carried.
        """
        horizon = self._today() + timedelta(days=wire.MAX_DAYS_AHEAD)
        local: dict[int, UpdateResult] = {}
        warnings: dict[int, list[str]] = {}
        sendable: list[int] = []
        for i, u in enumerate(updates):
            problem = self._invalid(u)
            if problem:
                local[i] = UpdateResult(update=u, ok=False, error_code="INVALID", error=problem)
            elif u.start > horizon:
                local[i] = UpdateResult(update=u, ok=False, error_code=wire.ERR_TOO_FAR,
                                        error=f"Date can not be greater than 730 days (after {horizon}); not sent")
            else:
                if u.end > horizon:
                    warnings[i] = [f"dates after {horizon} not sent: Agoda accepts at most 730 days ahead"]
                sendable.append(i)
        compressed, origins = compress_with_origins([updates[i] for i in sendable], weekday_patterns=True)
        requests, _ = plan_requests(compressed, last=horizon, max_updates=max(1, self.max_updates_per_request // 2))
        part_results: dict[int, list[UpdateResult]] = {}
        sent_ok = False
        for request in requests:
            wires = [(p.index, w) for p in request for w in self.to_wire(p.update)]
            if not wires:
                continue
            try:
                outcome = await self._send_set_ari([w for _, w in wires])
            except ChannelError as exc:
                if not sent_ok:
                    raise
                failure = UpdateResult(ok=False, error_code=exc.code or str(exc.status_code or ""),
                                       error=str(exc), transient=exc.transient)
                for j, _ in wires:
                    part_results.setdefault(j, []).append(failure)
                continue
            sent_ok = True
            for (j, _), result in zip(wires, outcome, strict=True):
                part_results.setdefault(j, []).append(result)
        for k, i in enumerate(sendable):
            parts = [r for j in origins[k] for r in part_results.get(j, [])]
            local[i] = combine(updates[i], parts, warnings.get(i, []))
        return [local[i] for i in range(len(updates))]

    async def _send_set_ari(self, wires: Sequence[wire.WireUpdate]) -> list[UpdateResult]:
        """One SetARI V2 request; one result per wire update.

        Agoda answers 200 (all applied), 207 with errors nested per update and date range
        (those failed, the rest applied), or 400/401 with errors per property (nothing
        applied). A 207 from a partner account without the partial-success setting carries
        the property-level form: nothing is known to be applied, so every update fails.
        Body error codes are validation/authorisation errors (`wire.DOCUMENTED_ERRORS`):
        permanent; transient failures arrive as HTTP 429/5xx and raise before this point.
        """
        response = await self._post(wire.build_set_ari(self.property_id, wires), ok_statuses=_PARTIAL_OK)
        try:
            outcome = wire.parse_set_ari_response(response.content)
        except MalformedPayloadError:
            if response.status_code == 200:
                raise  # cannot tell what was applied
            outcome = wire.SetAriOutcome(errors=[("", response.text[:200])])
        status = response.status_code
        rejected = status == 400 or bool(outcome.errors) or (status != 200 and not outcome.update_errors)
        general = "; ".join(_describe(c, d) for c, d in outcome.errors) or f"HTTP {status}"
        results = []
        for w in wires:
            errs = outcome.update_errors.get(w.key)
            if errs:
                results.append(UpdateResult(ok=False, error_code=errs[0][0], transient=False,
                                            error="; ".join(_describe(c, d) for c, d in errs)))
            elif rejected:
                code = outcome.errors[0][0] if outcome.errors and outcome.errors[0][0] else str(status)
                results.append(UpdateResult(ok=False, error_code=code, transient=False,
                                            error=f"request rejected: {general}"))
            else:
                results.append(UpdateResult(ok=True))
        return results

    async def get_ari(self, start: date, end: date) -> list[ARIUpdate]:
        """GetARI V2 read-back, compressed to ranges (rooms without, rates with a rate plan)."""
        response = await self._post(wire.build_get_ari(self.property_id, start, end))
        updates = [self._ari_day(d) for d in wire.parse_get_ari_response(response.content, self.occupancy)]
        return compress(expand(updates))

    @staticmethod
    def _ari_day(d: wire.AriDay) -> ARIUpdate:
        fields: dict[str, Any] = {
            "available": d.allotment, "stop_sell": d.closed, "closed_to_arrival": d.cta,
            "closed_to_departure": d.ctd, "rate": d.price, "currency": d.currency,
            "min_los": d.min_los, "max_los": d.max_los,
        }
        return ARIUpdate(partner_room_type_code=d.room_id, partner_rate_plan_code=d.rateplan_id,
                         start=d.day, end=d.day, **{k: v for k, v in fields.items() if v is not None})
