"""Airbnb adapter: OAuth client-credentials bearer token, calendar PUTs, reservation pages.

Airbnb's API is partner-only and unpublished: see `channels/airbnb_wire.py` for the dialect.
One listing is one room type; Airbnb has a single price per listing, so only updates without
a rate plan (or with the catalog's "default") are accepted. `acknowledge` *accepts* pending
reservation requests (the booking is committed, so the hotel takes it; overbookings are
flagged downstream, never declined here); accepted/cancelled reservations need no ack.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, Literal

import httpx

from channels.airbnb_wire import (
    SIGNATURE_HEADER,
    calendar_body,
    decision_request,
    error_message,
    load_json,
    parse_bookings,
    parse_reservations,
    sign_webhook,
    verify_webhook_signature,
)
from channels.ari import plan_requests
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
    PermanentChannelError,
    TransientChannelError,
    UpdateResult,
    failed_acks,
)
from channels.http import HttpAdapter, secret_text
from channels.tokens import BearerAuth, IssuedToken, TokenKey, TokenProvider, TokenStore

__all__ = [
    "SIGNATURE_HEADER",
    "AirbnbAdapter",
    "AirbnbTokenAuth",
    "parse_bookings",
    "sign_webhook",
    "verify_webhook_signature",
]

TOKEN_PATH = "/oauth2/v1/token"
_LISTING_PRICE_PLANS = frozenset({None, "default"})
_REFRESH_MARGIN = 60.0  # renew a little early so a token never expires mid-request
#: Listings one bookings page reads at once (one request each): a host's listings are read
#: together, not one after another, yet never more than this many requests in flight.
LISTINGS_AT_ONCE = 8
#: The cursor after a first page that only discovered the host's listings.
DISCOVERED = "discovered"


class AirbnbTokenAuth(BearerAuth):
    """Client-credentials bearer auth over a shared TokenProvider (renewed on expiry, or once
    on a 401)."""

    @property
    def issued(self) -> int:
        """Tokens this adapter fetched (tests check the shared cache through it)."""
        return self.provider.exchanges


class AirbnbAdapter(HttpAdapter):
    """ChannelAdapter for Airbnb (one host account; listings discovered or given)."""

    name = ChannelName.AIRBNB
    hosts = {"default": "https://api.airbnb.com"}
    max_updates_per_request = 1  # one calendar range per PUT
    supports_weekdays = False

    def __init__(
        self,
        config: ChannelConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | float | None = None,
        listing_ids: Sequence[str] | None = None,
        token_store: TokenStore | None = None,
        page_size: int = 50,
        pagination: Literal["cursor", "offset"] = "cursor",
    ) -> None:
        super().__init__(config, transport=transport, timeout=timeout)
        base = str(self._client.base_url).rstrip("/") if config.endpoint else self.hosts["default"]
        self.token_url = base + TOKEN_PATH
        # Missing credentials fail at the first call (clear error), not at construction.
        self.tokens = TokenProvider(
            self.name,
            TokenKey.of(self.name, self.token_url, secret_text(config.api_key), secret_text(config.api_secret)),
            self._exchange,
            margin=_REFRESH_MARGIN,
            store=token_store,
        )
        self.auth = AirbnbTokenAuth(self.tokens)
        self._client.auth = self.auth
        # Listing ids come from the caller (the channel's room-type mappings); else ask Airbnb.
        self._listings: list[str] | None = list(listing_ids) if listing_ids else None
        self.page_size = page_size
        self.pagination = pagination

    def use_token_store(self, store: TokenStore) -> None:
        """Share the OAuth token through `store` (the database) instead of this instance."""
        self.tokens.use_store(store)

    async def _exchange(self) -> IssuedToken:
        """One client-credentials token request (no bearer auth on it)."""
        client_id, secret = secret_text(self.config.api_key), secret_text(self.config.api_secret)
        if not client_id or not secret:
            raise PermanentChannelError(self.name, "channel config is missing apiKey/apiSecret (OAuth client)")
        response = await self.request(
            "POST", self.token_url, auth=None, ok_statuses=frozenset(range(400, 600)),
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        )
        if response.status_code != 200:
            raise ChannelError.from_response(
                self.name, response, detail=f"token exchange failed: {error_message(response.content)[1]}")
        data = load_json(response.content, "token answer")
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise PermanentChannelError(self.name, "token answer without access_token")
        try:
            expires_in = float(data.get("expires_in", 3600))
        except (TypeError, ValueError):
            raise PermanentChannelError(self.name, "token answer with a bad expires_in") from None
        return IssuedToken(token, expires_in)

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request(method, self.url(path), **kwargs)

    async def listings(self) -> list[str]:
        """The host's listing ids (configured, else `GET /v2/listings`, cached)."""
        if self._listings is None:
            data = load_json((await self._call("GET", "/v2/listings")).content, "listings answer")
            self._listings = [str(item["id"]) for item in data.get("listings", [])]
        return self._listings

    # ------------------------------------------------------------ bookings

    def fetch_requests(self, cursor: str | None = None) -> int:
        """Requests `fetch_bookings(cursor=cursor)` sends: one per listing it reads now (the
        discovery of the host's listings first, when none are configured)."""
        if self._listings is None:
            return 1
        return max(1, len(self._step(cursor)[0]))

    def _step(self, cursor: str | None) -> tuple[dict[int, str], int]:
        """The listings one page reads (listing index -> Airbnb cursor or offset, "" from the
        start) and the index of the first listing it leaves for later."""
        assert self._listings is not None
        if cursor is None or cursor == DISCOVERED:
            open_, following = {}, 0
        else:
            try:
                state = json.loads(cursor)
                open_ = {int(k): str(v) for k, v in state["open"].items()}
                following = int(state["next"])
            except (ValueError, KeyError, TypeError, AttributeError):
                raise PermanentChannelError(self.name, "bad bookings cursor") from None
        stop = min(len(self._listings), following + max(0, LISTINGS_AT_ONCE - len(open_)))
        return {**open_, **{i: "" for i in range(following, stop)}}, stop

    async def fetch_bookings(
        self, start: date | None = None, end: date | None = None, cursor: str | None = None,
        changed_since: datetime | None = None,
    ) -> BookingPage:
        """One page of reservations (pending included) of up to LISTINGS_AT_ONCE listings,
        read at once, updated in start..end, or at or after `changed_since` (an instant: it
        wins over `start`).

        Airbnb lists reservations per listing: a page asks each listing it reads for its next
        page, and the cursor (JSON: the listings still open with their Airbnb cursor or
        offset, and the first listing not started) carries on until every listing is
        drained. A host without configured listings costs one first page: their discovery.
        """
        if self._listings is None:
            # The discovery is the page's one request (as fetch_requests said), also when
            # a cursor comes from another instance (rebuilt mid-pull): the reading goes on
            # from the same cursor on the next page.
            await self.listings()
            return BookingPage(bookings=[], has_more=bool(self._listings),
                               cursor=(cursor or DISCOVERED) if self._listings else None,
                               final=not self._listings)
        listings = await self.listings()
        reading, following = self._step(cursor)
        if not reading:
            return BookingPage(bookings=[], final=True)
        common: dict[str, Any] = {"include_pending": "true", "_limit": self.page_size}
        if changed_since:
            common["updated_since"] = changed_since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif start:
            common["updated_since"] = start.isoformat()
        if end:
            common["updated_until"] = end.isoformat()
        order = sorted(reading)
        answers = await asyncio.gather(*[
            self._listing_page(listings[i], reading[i], common) for i in order])
        still_open: dict[str, str] = {}
        unique: dict[tuple[str, str], BookingRecord] = {}
        for i, (records, nxt) in zip(order, answers, strict=True):
            for rec in records:
                unique.setdefault((rec.external_id, rec.revision), rec)  # duplicates collapse
            if nxt is not None:
                still_open[str(i)] = nxt
        if still_open or following < len(listings):
            next_cursor: str | None = json.dumps({"open": still_open, "next": following},
                                                 separators=(",", ":"))
        else:
            next_cursor = None
        return BookingPage(bookings=list(unique.values()), has_more=next_cursor is not None,
                           cursor=next_cursor, final=next_cursor is None)

    async def _listing_page(self, listing: str, position: str, common: dict[str, Any]
                            ) -> tuple[list[BookingRecord], str | None]:
        """One listing's next reservations page and where it goes on (None: drained)."""
        params = {"listing_id": listing, **common}
        if self.pagination == "offset":
            params["_offset"] = int(position or 0)
        elif position:
            params["cursor"] = position
        data = load_json((await self._call("GET", "/v2/reservations", params=params)).content,
                         "reservations page")
        records = parse_reservations(data)
        meta = data.get("metadata") or {}
        if self.pagination == "offset":
            got = len(data["reservations"])
            more = (bool(meta.get("has_more")) or got >= self.page_size) and got > 0
            return records, str(int(position or 0) + got) if more else None
        nxt = meta.get("next_cursor")
        return records, str(nxt) if meta.get("has_more") and nxt else None

    async def fetch_booking(self, external_id: str) -> BookingRecord | None:
        """`GET /v2/reservations/{confirmation_code}`; None when Airbnb answers 404."""
        response = await self._call("GET", f"/v2/reservations/{external_id}", ok_statuses=frozenset({404}))
        if response.status_code == 404:
            return None
        data = load_json(response.content, "reservation answer")
        records = parse_reservations({"reservations": [data.get("reservation", data)]})
        return records[0] if records else None

    async def _decide(self, code: str, action: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """accept/decline a pending request or cancel as host (`PUT /v2/reservations/{code}`)."""
        method, payload = decision_request(action, (body or {}).get("reason"))
        return await self._call(method, f"/v2/reservations/{code}", json=payload,
                                ok_statuses=frozenset({404, 409}))

    def ack_requests(self, bookings: Sequence[BookingRecord]) -> int:
        """One accept per pending request; nothing for the rest."""
        return sum(1 for rec in bookings if rec.status == "pending")

    async def acknowledge(self, bookings: Sequence[BookingRecord]) -> list[AckResult]:
        """Accept pending reservation requests; everything else needs no acknowledgement."""
        out = []
        for rec in bookings:
            if rec.status != "pending":
                out.append(AckResult(external_id=rec.external_id, ok=True))
                continue
            try:
                response = await self._decide(rec.external_id, "accept")
            except ChannelError as exc:
                out.extend(failed_acks([rec.external_id], exc))
                continue
            if response.status_code == 200:
                out.append(AckResult(external_id=rec.external_id, ok=True))
            else:
                kind, message = error_message(response.content)
                out.append(AckResult(external_id=rec.external_id, ok=False, error=f"{kind}: {message}"))
        return out

    async def decline(self, external_id: str, reason: str = "dates_not_available") -> UpdateResult:
        """Decline a pending reservation request."""
        return self._verdict(await self._decide(external_id, "decline", {"reason": reason}))

    async def update_booking_status(self, external_id: str, status: BookingStatus) -> UpdateResult:
        """CONFIRMED accepts a request; CANCELLED declines a request or cancels as host."""
        if status == BookingStatus.CONFIRMED:
            return self._verdict(await self._decide(external_id, "accept"))
        if status == BookingStatus.CANCELLED:
            current = await self.fetch_booking(external_id)
            if current is None:
                return UpdateResult(ok=False, error_code="NOT_FOUND", error=f"reservation {external_id} not found")
            action = "decline" if current.status == "pending" else "cancel"
            return self._verdict(await self._decide(external_id, action, {"reason": "host_cancelled"}))
        return UpdateResult(ok=False, error_code="NOT_SUPPORTED",
                            error=f"Airbnb takes no {status.value} status from hosts")

    @staticmethod
    def _verdict(response: httpx.Response) -> UpdateResult:
        if response.status_code == 200:
            return UpdateResult(ok=True)
        kind, message = error_message(response.content)
        return UpdateResult(ok=False, error_code=kind or str(response.status_code), error=message)

    # ------------------------------------------------------------ ARI

    async def push_ari(self, updates: Sequence[ARIUpdate]) -> list[UpdateResult]:
        """One PUT per listing and range of equal consecutive days (weekday masks expanded).

        Raises when the first PUT fails outright; after that, a transient failure stops the
        push and marks the rest transient (no hammering a throttled partner).
        """
        results: dict[int, UpdateResult] = {}
        sendable: list[int] = []
        for i, u in enumerate(updates):
            if u.partner_rate_plan_code not in _LISTING_PRICE_PLANS:
                results[i] = UpdateResult(update=u, ok=False, error_code="RATE_PLAN_UNKNOWN",
                                          error=f"Airbnb listings have one price; rate plan "
                                                f"{u.partner_rate_plan_code} is not mapped")
            elif u.end < u.start:
                results[i] = UpdateResult(update=u, ok=False, error_code="INVALID", error="start is after end")
            else:
                sendable.append(i)
        # Availability and price of a listing share one calendar: merge them into one key; and
        # a listing is one unit, so 3 and 2 rooms left are the same "available" day.
        listing_level = [
            updates[i].model_copy(update={
                "partner_rate_plan_code": None,
                "available": None if (left := updates[i].available) is None else min(left, 1),
            })
            for i in sendable
        ]
        compressed, origins = compress_with_origins(listing_level)
        requests, _ = plan_requests(compressed, max_updates=1)
        part: dict[int, UpdateResult] = {}
        sent_ok = False
        stop: ChannelError | None = None
        for request in requests:
            (p,) = request
            body = calendar_body(p.update)
            if not body:
                part[p.index] = UpdateResult(ok=True)
                continue
            if stop is not None:
                part[p.index] = UpdateResult(ok=False, error_code="NOT_SENT", transient=True,
                                             error=f"not sent after: {stop}")
                continue
            path = f"/v2/calendars/{p.update.partner_room_type_code}/{p.update.start}/{p.update.end}"
            try:
                response = await self._call("PUT", path, json=body, ok_statuses=frozenset({400, 404, 422}))
            except ChannelError as exc:
                if not sent_ok:
                    raise
                part[p.index] = UpdateResult(ok=False, error_code=str(exc.status_code or ""),
                                             error=str(exc), transient=exc.transient)
                if isinstance(exc, TransientChannelError):
                    stop = exc
                continue
            sent_ok = True
            part[p.index] = self._verdict(response)
        for k, i in enumerate(sendable):
            results[i] = combine(updates[i], [part[j] for j in origins[k] if j in part])
        return [results[i] for i in range(len(updates))]
