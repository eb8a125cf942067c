"""Simulated partner accounts that serve several hotels (issue 13, item 2), each partner.

Booking.com keeps one reservation queue per provider account: one `GET OTA_HotelResNotif`
answers every connected hotel's pending reservations, `hotel_ids` filters, each reservation
names its hotel (RoomStay/BasicPropertyInfo/@HotelCode), and ARI names the hotel in
AvailStatusMessages/@HotelCode. The adapter talks to the account over real HTTP here.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from lxml import etree

from channels.base import ARIUpdate, ChannelConfig, ChannelName, PermanentChannelError
from channels.booking_com import BookingComAdapter, parse_bookings
from channels.booking_com_ota import NS
from channels.simulators.booking_com import create_app
from channels.simulators.catalog import CATALOG, hotel_catalog
from channels.simulators.server import build_app, running_server

pytestmark = pytest.mark.anyio
TODAY = datetime.now(UTC).date()
HOTELS = [hotel_catalog(ChannelName.BOOKING_COM, i) for i in range(3)]


def test_hotel_catalogs_give_each_hotel_its_own_ids() -> None:
    assert hotel_catalog(ChannelName.BOOKING_COM, 0) == CATALOG[ChannelName.BOOKING_COM]
    ids = [c["hotel_id"] for c in HOTELS]
    assert ids == ["1234567", "1234568", "1234569"]
    # Booking.com room ids begin with their hotel's id; rate ids are the partner's own
    assert HOTELS[1]["room_types"]["STD"] == "123456801"
    rooms = [set(c["room_types"].values()) for c in HOTELS]
    plans = [set(c["rate_plans"].values()) for c in HOTELS]
    assert not rooms[0] & rooms[1] and not rooms[1] & rooms[2]
    assert not plans[0] & plans[1]
    # Expedia and Agoda scope rooms by the hotel named in each request: same codes
    exp = [hotel_catalog(ChannelName.EXPEDIA, i) for i in range(2)]
    assert exp[0]["hotel_id"] != exp[1]["hotel_id"]
    assert exp[0]["room_types"] == exp[1]["room_types"]
    air = [hotel_catalog(ChannelName.AIRBNB, i) for i in range(2)]
    assert not set(air[0]["room_types"].values()) & set(air[1]["room_types"].values())
    with pytest.raises(ValueError):
        hotel_catalog(ChannelName.AGODA, -1)


def _config(hotel: int) -> ChannelConfig:
    return ChannelConfig(apiKey="machine-1", apiSecret="s3cret", hotelId=HOTELS[hotel]["hotel_id"])


async def test_one_account_serves_each_hotel_its_own_reservations_and_ari() -> None:
    app = create_app(bookings=8, seed=3, hotels=3, credentials={"machine-1": "s3cret"})
    account = app.state.sim
    assert list(account.hotels) == [c["hotel_id"] for c in HOTELS]
    with running_server(app) as url:
        # One request, no filter: the pending reservations of all three hotels, each with
        # its hotel's code and that hotel's room ids (parsed by the real parser).
        async with httpx.AsyncClient(base_url=url) as client:
            token = (await client.post("/token-based-authentication/exchange", json={
                "client_id": "machine-1", "client_secret": "s3cret"})).json()["jwt"]
            answer = await client.get("/hotels/ota/OTA_HotelResNotif",
                                      headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        records = parse_bookings(answer.content)
        by_hotel = Counter(r.hotel_code for r in records)
        new_per_hotel = {h.hotel_id: sum(m.booking.event == "new" for m in h.queue.messages)
                         for h in account.hotels.values()}
        assert by_hotel == new_per_hotel  # 3 x < 50: every hotel's new bookings, one page
        for record in records:
            own_rooms = set(HOTELS[[c["hotel_id"] for c in HOTELS].index(record.hotel_code)]
                            ["room_types"].values())
            assert {room.partner_room_type_code for room in record.rooms} <= own_rooms

        # A hotel's channel (hotel_ids = its id) sees only its own hotel, and acknowledging
        # through the account takes exactly those reservations off the account's queue.
        second = BookingComAdapter(_config(1).model_copy(update={"endpoint": url}))
        try:
            page = await second.fetch_bookings()
            assert page.bookings and {b.hotel_code for b in page.bookings} == {HOTELS[1]["hotel_id"]}
            acks = await second.acknowledge(page.bookings)
            assert all(a.ok for a in acks)
            hotel1 = account.hotels[HOTELS[1]["hotel_id"]]
            acked = {m.booking.booking_id for m in hotel1.queue.messages if m.acked}
            assert acked == {b.external_id for b in page.bookings}
            assert not any(m.acked for h in (account, account.hotels[HOTELS[2]["hotel_id"]])
                           for m in h.queue.messages)

            # ARI with hotel 1's room ids lands in hotel 1's calendar only ...
            std1 = HOTELS[1]["room_types"]["STD"]
            results = await second.push_ari([ARIUpdate(
                partner_room_type_code=std1, start=TODAY, end=TODAY + timedelta(days=2),
                available=3)])
            assert [r.ok for r in results] == [True]
            assert hotel1.ari.calendar[f"{std1}/*"][TODAY.isoformat()] == {"available": 3}
            assert not account.ari.calendar
            # ... and hotel 0's room ids are not hotel 1's rooms.
            wrong = await second.push_ari([ARIUpdate(
                partner_room_type_code=HOTELS[0]["room_types"]["STD"], start=TODAY,
                end=TODAY, available=1)])
            assert not wrong[0].ok and "ROOM_ID_INVALID" in (wrong[0].error or "")
        finally:
            await second.aclose()

        # A hotel the account is not connected to: 403 for reservations and ARI.
        stranger = BookingComAdapter(ChannelConfig(
            apiKey="machine-1", apiSecret="s3cret", hotelId="7654321", endpoint=url))
        try:
            with pytest.raises(PermanentChannelError) as err:
                await stranger.fetch_bookings()
            assert err.value.status_code == 403
            with pytest.raises(PermanentChannelError) as err:
                await stranger.push_ari([ARIUpdate(partner_room_type_code="765432101",
                                                   start=TODAY, end=TODAY, available=1)])
            assert err.value.status_code == 403
        finally:
            await stranger.aclose()


def test_an_answer_holds_every_pending_reservation_of_every_hotel_or_at_most_limit() -> None:
    """Booking.com answers "a full list of open reservations" of the provider's hotels; the
    optional per-call maximum caps one answer (first hotel first)."""
    app = create_app(bookings=30, seed=5, hotels=3)  # 3 x 30 new bookings pending
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        token = client.post("/token-based-authentication/exchange", json={
            "client_id": "any", "client_secret": "any"}).json()["jwt"]
        auth = {"Authorization": f"Bearer {token}"}

        def pull(**params: Any) -> tuple[list[str | None], int]:
            body = client.get("/hotels/ota/OTA_HotelResNotif", params=params,
                              headers=auth).content
            codes = [el.get("HotelCode") for el in etree.fromstring(body).iter(
                f"{{{NS}}}BasicPropertyInfo")]
            return codes, len(list(etree.fromstring(body).iter(f"{{{NS}}}HotelReservation")))

        codes, count = pull()
        assert count == 90 and {c for c in codes} == {h["hotel_id"] for h in HOTELS[:3]}
        codes, count = pull(limit=50)
        assert count == 50
        assert codes[0] == HOTELS[0]["hotel_id"] and HOTELS[1]["hotel_id"] in codes
        assert HOTELS[2]["hotel_id"] not in codes
        # Filtering by two hotels, one of them unknown to the account: refused, named.
        refused = client.get("/hotels/ota/OTA_HotelResNotif",
                             params={"hotel_ids": f"{HOTELS[2]['hotel_id']},999"},
                             headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 403 and b"999" in refused.content


def test_admin_endpoints_address_one_hotel_or_all() -> None:
    from fastapi.testclient import TestClient

    app = create_app(bookings=0, seed=9, hotels=2)
    with TestClient(app) as client:
        assert client.get("/_sim/hotels").json() == [HOTELS[0]["hotel_id"], HOTELS[1]["hotel_id"]]
        made = client.post("/_sim/bookings", params={"count": 2, "changes": False,
                                                     "hotel": "all"}).json()
        assert Counter(b["hotel_id"] for b in made["bookings"]) == {
            HOTELS[0]["hotel_id"]: 2, HOTELS[1]["hotel_id"]: 2}
        assert made["pending"] == 4 and client.get("/_sim/stats").json()["hotels"] == 2
        one = client.post("/_sim/bookings", params={"count": 1, "hotel": HOTELS[1]["hotel_id"]})
        assert {b["hotel_id"] for b in one.json()["bookings"]} == {HOTELS[1]["hotel_id"]}
        ids = client.get("/_sim/booking-ids").json()
        assert len(ids) == len(set(ids)) == 5  # booking ids are unique across the account
        assert client.post("/_sim/bookings", params={"hotel": "nope"}).status_code == 404
        assert client.get("/_sim/ari/days", params={
            "room": "x", "start": TODAY.isoformat(), "end": TODAY.isoformat(),
            "hotel": "nope"}).status_code == 404


async def test_an_eqc_user_linked_to_several_hotels() -> None:
    """EQC names the hotel in every request (`Hotel/@id`); a booking retrieval without one
    returns the bookings of every hotel the user is linked to (max 125)."""
    from channels.expedia import ExpediaAdapter
    from channels.expedia_eqc import build_br, parse_bookings
    from channels.simulators.expedia import create_app as expedia_app

    hotels = [hotel_catalog(ChannelName.EXPEDIA, i) for i in range(2)]
    app = expedia_app(bookings=6, seed=4, hotels=2)
    account = app.state.sim
    first, second = (account.hotels[c["hotel_id"]] for c in hotels)
    with running_server(app) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            every = await client.post("/eqc/br", content=build_br("u", "p", None),
                                      headers={"Content-Type": "text/xml"})
            records = parse_bookings(every.content)
            assert {r.hotel_code for r in records} == {first.hotel_id, second.hotel_id}
            for record in records:  # each booking under the hotel whose queue holds it
                holder = first if first.queue.find(record.external_id) else second
                assert record.hotel_code == holder.hotel_id
            stranger = await client.post("/eqc/br", content=build_br("u", "p", "999"),
                                         headers={"Content-Type": "text/xml"})
            assert b'code="3202"' in stranger.content
        adapter = ExpediaAdapter(ChannelConfig(apiKey="u", apiSecret="p", endpoint=url,
                                               hotelId=hotels[1]["hotel_id"]))
        try:
            page = await adapter.fetch_bookings()
            assert page.bookings and {b.hotel_code for b in page.bookings} == {second.hotel_id}
            acks = await adapter.acknowledge(page.bookings)
            assert all(a.ok for a in acks)
            assert {m.booking.booking_id for m in second.queue.messages if m.acked} == {
                b.external_id for b in page.bookings}
            assert not any(m.acked for m in first.queue.messages)
            std = hotels[1]["room_types"]["STD"]
            results = await adapter.push_ari([ARIUpdate(
                partner_room_type_code=std, start=TODAY, end=TODAY, available=2)])
            assert [r.ok for r in results] == [True]
            assert second.ari.calendar[f"{std}/*"][TODAY.isoformat()] == {"available": 2}
            assert not first.ari.calendar
        finally:
            await adapter.aclose()


async def test_an_agoda_key_authorised_for_several_properties() -> None:
    from channels.agoda import AgodaAdapter
    from channels.simulators.agoda import create_app as agoda_app

    hotels = [hotel_catalog(ChannelName.AGODA, i) for i in range(2)]
    app = agoda_app(bookings=6, seed=4, api_key="k", hotels=2)
    first, second = (app.state.sim.hotels[c["hotel_id"]] for c in hotels)
    with running_server(app) as url:
        adapter = AgodaAdapter(ChannelConfig(apiKey="k", propertyId=second.hotel_id, endpoint=url))
        try:
            page = await adapter.fetch_bookings()
            assert page.bookings and not page.errors
            assert {b.hotel_code for b in page.bookings} == {second.hotel_id}
            assert {b.external_id for b in page.bookings} <= {
                m.booking.booking_id for m in second.queue.messages}
            acks = await adapter.acknowledge(page.bookings)
            assert all(a.ok for a in acks)
            assert not any(m.acked for m in first.queue.messages)
            room = hotels[1]["room_types"]["STD"]
            results = await adapter.push_ari([ARIUpdate(
                partner_room_type_code=room, start=TODAY, end=TODAY, available=4)])
            assert [r.ok for r in results] == [True]
            assert second.ari.calendar[f"{room}/*"][TODAY.isoformat()]["available"] == 4
            assert not first.ari.calendar
        finally:
            await adapter.aclose()
        stranger = AgodaAdapter(ChannelConfig(apiKey="k", propertyId="99999", endpoint=url))
        try:  # Agoda refuses the whole request for a property the key is not authorised for
            refused = await stranger.push_ari([ARIUpdate(partner_room_type_code="3301",
                                                         start=TODAY, end=TODAY, available=1)])
            assert not refused[0].ok and refused[0].error_code == "1201"
        finally:
            await stranger.aclose()


async def test_an_airbnb_host_with_several_properties() -> None:
    from channels.airbnb import AirbnbAdapter
    from channels.simulators.airbnb import confirmation_code, webhook_event
    from channels.simulators.airbnb import create_app as airbnb_app

    hotels = [hotel_catalog(ChannelName.AIRBNB, i) for i in range(2)]
    app = airbnb_app(bookings=5, seed=4, hotels=2)
    first, second = (app.state.sim.hotels[c["hotel_id"]] for c in hotels)
    own = list(hotels[1]["room_types"].values())
    with running_server(app) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            token = (await client.post("/oauth2/v1/token", data={
                "grant_type": "client_credentials", "client_id": "c",
                "client_secret": "s"})).json()["access_token"]
            listings = (await client.get("/v2/listings", headers={
                "Authorization": f"Bearer {token}"})).json()["listings"]
        assert [item["id"] for item in listings] == [
            *hotels[0]["room_types"].values(), *own]
        adapter = AirbnbAdapter(ChannelConfig(apiKey="c", apiSecret="s", endpoint=url),
                                listing_ids=own)
        try:
            records = []
            cursor = None
            while True:
                page = await adapter.fetch_bookings(cursor=cursor)
                records += page.bookings
                if not page.has_more:
                    break
                cursor = page.cursor
            codes = {confirmation_code(m.booking.booking_id) for m in second.queue.messages}
            assert records and {r.external_id for r in records} == codes
            assert {room.partner_room_type_code for r in records for room in r.rooms} <= set(own)
            results = await adapter.push_ari([ARIUpdate(
                partner_room_type_code=own[0], start=TODAY, end=TODAY, stop_sell=True)])
            assert [r.ok for r in results] == [True]
            assert TODAY.isoformat() in second.ari.calendar[f"{own[0]}/*"]
            assert not first.ari.calendar
        finally:
            await adapter.aclose()
    body, _ = webhook_event(app, sorted(codes)[0], "reservation_created")
    assert sorted(codes)[0].encode() in body  # a webhook for any of the host's properties


def test_every_partner_simulator_hosts_several_hotels() -> None:
    for name in (ChannelName.BOOKING_COM, ChannelName.EXPEDIA, ChannelName.AGODA,
                 ChannelName.AIRBNB):
        hotels = build_app(name, bookings=2, hotels=4).state.sim.hotels
        assert list(hotels) == [hotel_catalog(name, i)["hotel_id"] for i in range(4)]
        ids = [m.booking.booking_id for h in hotels.values() for m in h.queue.messages]
        assert len({*ids}) == len({(h.hotel_id, m.booking.booking_id)
                                   for h in hotels.values() for m in h.queue.messages})
    with pytest.raises(ValueError):
        build_app(ChannelName.AGODA, hotels=0)


def test_latency_is_drawn_from_the_range_given() -> None:
    import time as clock

    from fastapi.testclient import TestClient

    from channels.simulators.common import FaultSettings

    app = create_app(bookings=0, faults=FaultSettings(latency_ms=20, latency_max_ms=60))
    taken = []
    with TestClient(app) as client:
        for _ in range(8):
            started = clock.perf_counter()
            client.get("/hotels/ota/OTA_HotelResNotif")  # 401 without a token, after the wait
            taken.append(clock.perf_counter() - started)
    assert min(taken) >= 0.02 and max(taken) < 1.0
    assert len({round(t, 3) for t in taken}) > 1  # drawn, not fixed
