"""Booking.com adapter: token exchange (cached), OTA XML reservations and OTA ARI.

Config: `apiKey` = machine-account client id, `apiSecret` = client secret, `hotelId` (or
`propertyId`) = Booking.com hotel id. Status updates: Booking.com has no general booking
status push, so update_booking_status answers NOT_SUPPORTED (no-show reporting lives in the
extranet/Reservations API and is not simulated).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar

import httpx

from channels.ari import Part, plan_requests
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
    PermanentChannelError,
    UpdateResult,
    failed_acks,
)
from channels.booking_com_ota import (
    RES_MODIFY_NOTIF,
    RES_NOTIF,
    Outcome,
    attribute,
    build_ack,
    build_avail_notif,
    build_rate_notif,
    has_availability,
    parse_bookings,
    parse_outcomes,
    parse_root,
)
from channels.http import HttpAdapter, secret_text
from channels.registry import register
from channels.tokens import BearerAuth, IssuedToken, TokenKey, TokenProvider, TokenStore
from channels.xmlsafe import parse_xml

__all__ = ["BookingComAdapter", "is_permanent", "parse_bookings"]

XML = {"Content-Type": "text/xml; charset=utf-8"}
TOKEN_PATH = "/token-based-authentication/exchange"
# Codes that re-sending the same update cannot fix: Booking.com's documented ARI error codes
# (rates-availability-error-codes) and OTA 497 "You do not have access to hotel" (Warning
# example of the OTA *NotifRS field tables).
PERMANENT_CODES = frozenset({
    "ROOM_ID_INVALID", "ROOM_ID_MISSING", "RATE_ID_INVALID", "NOT_A_VALID_DATE",
    "FROM_DATE_SHOULD_BE_LESS_THAN_TO_DATE", "DATES_TOO_FAR_OR_INVALID", "497",
})
# OTA Error/Warning @Type values that re-sending cannot fix: 4
# authentication, 6 authorization, 7 protocol violation, 10 required field missing
# (OTA "EWT" code list; Booking.com's Warning example carries Type="6").
PERMANENT_TYPES = frozenset({"4", "6", "7", "10"})


def is_permanent(outcome: Outcome) -> bool:
    return outcome.code in PERMANENT_CODES or outcome.type in PERMANENT_TYPES


class BookingComAdapter(HttpAdapter):
    """Booking.com Connectivity API (OTA XML flavour)."""

    name = ChannelName.BOOKING_COM
    hosts: ClassVar[dict[str, str]] = {
        "default": "https://secure-supply-xml.booking.com",
        "reservations": "https://secure-supply-xml.booking.com",
        "ari": "https://supply-xml.booking.com",
        "auth": "https://connectivity-authentication.booking.com",
    }
    max_updates_per_request = 200  # *unverified*; the documented limit is about a month of dates
    supports_weekdays = True
    max_days_per_request = 31
    horizon_days = 730
    token_margin = 120.0  # refresh this many seconds before the JWT expires

    def __init__(self, config: ChannelConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: httpx.Timeout | float | None = None,
                 token_store: TokenStore | None = None) -> None:
        super().__init__(config, transport=transport, timeout=timeout)
        self.hotel_id = self.require(config.hotel_id or config.property_id, "hotelId")
        token_url = self.url(TOKEN_PATH, "auth")
        if not token_url.startswith("http"):
            token_url = str(self._client.base_url).rstrip("/") + token_url
        # Missing credentials fail at the first exchange (clear error), not at construction.
        self.tokens = TokenProvider(
            self.name,
            TokenKey.of(self.name, token_url, secret_text(config.api_key), secret_text(config.api_secret)),
            self._exchange,
            margin=self.token_margin,
            store=token_store,
        )
        self._client.auth = BearerAuth(self.tokens)

    # ------------------------------------------------------------ auth

    @property
    def token_exchanges(self) -> int:
        """Token exchanges this adapter made (the token store counts every process's)."""
        return self.tokens.exchanges

    def use_token_store(self, store: TokenStore) -> None:
        """Share tokens through `store` (the database) instead of this instance."""
        self.tokens.use_store(store)

    async def _exchange(self) -> IssuedToken:
        """One token exchange (no bearer auth on it); 429 carries the partner's Retry-After."""
        body = {"client_id": self.require(self.config.api_key, "apiKey"),
                "client_secret": self.require(self.config.api_secret, "apiSecret")}
        response = await self.request("POST", self.url(TOKEN_PATH, "auth"), json=body, auth=None)
        try:
            data = response.json()
            token = str(data["jwt"])
            expires_in = float(data.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise self.malformed("token exchange answer without jwt") from None
        return IssuedToken(token, expires_in)

    async def _call(self, method: str, path: str, host: str, *, ok: frozenset[int] = frozenset(),
                    **kwargs: object) -> httpx.Response:
        """Authorized request (BearerAuth: on 401 the token is refreshed once, the call repeated)."""
        return await self.request(method, self.url(path, host), headers=XML,
                                  ok_statuses=ok, **kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------ bookings

    async def _pull(self, source: str, errors: list[str],
                    hotel_ids: Sequence[str] | None) -> list[BookingRecord]:
        params = {"hotel_ids": ",".join(hotel_ids)} if hotel_ids else {}
        response = await self._call("GET", f"/hotels/ota/{source}", "reservations",
                                    params=params)
        return parse_root(parse_xml(response.content, self.name), errors)

    async def fetch_account_bookings(self, hotel_ids: Sequence[str] | None = None) -> BookingPage:
        """The provider account's pending reservations of every connected hotel (Booking.com
        keeps one queue per provider; `hotel_ids` narrows it), new then modified/cancelled;
        each record carries its `hotel_code` for routing. Booking.com answers every pending
        reservation at once (no `limit` is sent), so nothing more waits until these are
        acknowledged (a modification is released after its booking's ack: the caller pulls
        again while acks release more)."""
        errors: list[str] = []
        new = await self._pull(RES_NOTIF, errors, hotel_ids)
        changed = await self._pull(RES_MODIFY_NOTIF, errors, hotel_ids)
        return BookingPage(bookings=new + changed, has_more=False, errors=errors)

    async def fetch_bookings(self, start: date | None = None, end: date | None = None,
                             cursor: str | None = None, changed_since: datetime | None = None,
                             ) -> BookingPage:
        """Un-acknowledged new reservations, then modifications/cancellations (window and
        `changed_since` ignored: Booking.com delivers a queue)."""
        return await self.fetch_account_bookings([self.hotel_id])

    async def fetch_booking(self, external_id: str) -> BookingRecord | None:
        """The latest pending message for one reservation (OTA has no fetch-by-id)."""
        page = await self.fetch_bookings()
        found = [b for b in page.bookings if b.external_id == external_id]
        return max(found, key=lambda b: b.revision) if found else None

    @staticmethod
    def _ack_groups(bookings: Sequence[BookingRecord]) -> dict[str, list[str]]:
        """Reservation ids per message type acknowledged (one POST each)."""
        groups: dict[str, dict[str, None]] = defaultdict(dict)  # ordered sets
        for b in bookings:
            source = b.ack_token if b.ack_token in (RES_NOTIF, RES_MODIFY_NOTIF) else (
                RES_NOTIF if b.event == "new" else RES_MODIFY_NOTIF)
            groups[source][b.external_id] = None
        return {source: list(ids) for source, ids in groups.items()}

    def ack_requests(self, bookings: Sequence[BookingRecord]) -> int:
        """One POST per message type (new; modified/cancelled)."""
        return len(self._ack_groups(bookings))

    async def acknowledge(self, bookings: Sequence[BookingRecord]) -> list[AckResult]:
        """POST OTA_HotelResNotifRS / OTA_HotelResModifyNotifRS listing each reservation."""
        groups = self._ack_groups(bookings)
        verdict: dict[tuple[str, str], AckResult] = {}
        for source, ids in groups.items():
            status = 0
            try:
                response = await self._call("POST", f"/hotels/ota/{source}", "reservations",
                                            ok=frozenset({400, 404}), content=build_ack(source, ids))
                status = response.status_code
                success, outcomes = parse_outcomes(parse_xml(response.content, self.name))
            except PermanentChannelError as exc:
                if not isinstance(exc, MalformedPayloadError) or status < 400:
                    verdict.update(((source, a.external_id), a) for a in failed_acks(ids, exc))
                    continue
                success, outcomes = False, []  # an error status with an unreadable body
            except ChannelError as exc:
                verdict.update(((source, a.external_id), a) for a in failed_acks(ids, exc))
                continue
            failed: dict[str, str] = {}
            whole: str | None = None
            for o in outcomes:
                if not o.failed:
                    continue
                if o.record_id:
                    failed[o.record_id] = f"{o.code}: {o.text}"
                else:
                    whole = f"{o.code}: {o.text}"
            for res_id in ids:
                error = failed.get(res_id) or whole
                if error is None and (status >= 400 or not success):
                    error = f"HTTP {status}: acknowledgement refused"
                verdict[(source, res_id)] = AckResult(external_id=res_id, ok=error is None, error=error)
        out = []
        for b in bookings:
            source = b.ack_token if b.ack_token in (RES_NOTIF, RES_MODIFY_NOTIF) else (
                RES_NOTIF if b.event == "new" else RES_MODIFY_NOTIF)
            out.append(verdict[(source, b.external_id)])
        return out

    # ------------------------------------------------------------ ARI

    async def push_ari(self, updates: Sequence[ARIUpdate]) -> list[UpdateResult]:
        """OTA_HotelAvailNotif / OTA_HotelRateAmountNotif, about a month per request."""
        today = datetime.now(UTC).date()
        requests, outside = plan_requests(
            updates, max_days=self.max_days_per_request, window_days=self.max_days_per_request,
            max_updates=self.max_updates_per_request, first=today - timedelta(days=1),
            last=today + timedelta(days=self.horizon_days))
        errors: dict[int, list[tuple[str, str, bool]]] = defaultdict(list)
        warnings: dict[int, list[str]] = defaultdict(list)
        for index in outside:
            errors[index].append(("NOT_A_VALID_DATE", "dates outside the bookable horizon", False))
        for parts in requests:
            avail = [(i, p) for i, p in enumerate(parts, 1) if has_availability(p.update)]
            rates = [(i, p) for i, p in enumerate(parts, 1) if p.update.rate is not None]
            if avail:
                body = build_avail_notif(self.hotel_id, [(i, p.update) for i, p in avail])
                await self._ari_request("OTA_HotelAvailNotif", body, avail, errors, warnings)
            if rates:
                body = build_rate_notif(self.hotel_id, [(i, p.update) for i, p in rates])
                await self._ari_request("OTA_HotelRateAmountNotif", body, rates, errors, warnings)
        results = []
        for index, update in enumerate(updates):
            errs = errors.get(index, [])
            results.append(UpdateResult(
                update=update, ok=not errs,
                error_code=errs[0][0] if errs else None,
                error="; ".join(f"{c}: {t}" for c, t, _ in errs) or None,
                transient=bool(errs) and all(tr for _, _, tr in errs),
                warnings=warnings.get(index, []),
            ))
        return results

    async def _ari_request(self, message: str, body: bytes, parts: list[tuple[int, Part]],
                           errors: dict[int, list[tuple[str, str, bool]]],
                           warnings: dict[int, list[str]]) -> None:
        response = await self._call("POST", f"/hotels/ota/{message}", "ari", ok=frozenset({400}),
                                    content=body)
        try:
            success, outcomes = parse_outcomes(parse_xml(response.content, self.name))
        except PermanentChannelError:
            if response.status_code == 400:
                raise PermanentChannelError(self.name, f"{message}: HTTP 400 {response.text[:200]}",
                                            status_code=400) from None
            raise
        by_locator = {i: p.index for i, p in parts}
        named_updates = [(i, p.update) for i, p in parts]
        unattributed: list[Outcome] = []
        for o in outcomes:
            locators = attribute(o, named_updates)
            if locators is None:
                if o.failed:
                    unattributed.append(o)
                else:
                    for _, p in parts:
                        warnings[p.index].append(f"{o.code}: {o.text}")
                continue
            for loc in locators:
                if o.failed:
                    errors[by_locator[loc]].append((o.code, o.text, not is_permanent(o)))
                else:
                    warnings[by_locator[loc]].append(f"{o.code}: {o.text}")
        if not success and not outcomes:
            unattributed.append(Outcome(str(response.status_code), "update refused without details", None, True))
        # Nothing says which updates failed: count the whole request as failed (safe, since
        # ARI is idempotent and the caller re-sends failures).
        for o in unattributed:
            for _, p in parts:
                errors[p.index].append((o.code, o.text, not is_permanent(o)))

    # ------------------------------------------------------------ status

    async def update_booking_status(self, external_id: str, status: BookingStatus) -> UpdateResult:
        return UpdateResult(ok=False, error_code="NOT_SUPPORTED",
                            error=f"Booking.com has no booking status push ({status.value})")


register(ChannelName.BOOKING_COM, BookingComAdapter)
