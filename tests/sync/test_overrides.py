"""Per-run config overrides take effect (endpoint, hotelId, propertyId) or are refused (422),
and every demo channel ingests bookings from its simulator."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.auth import create_api_key
from channels.base import ChannelName
from channels.simulators.booking_com import create_app as booking_sim
from channels.simulators.server import build_app, running_server
from db.models import Channel, ChannelBooking, Property
from db.repositories.channels import load_channel_config
from tests.sync.conftest import make_hotel, point_channel_at

OTHER_HOTEL = "7654321"


@pytest.fixture
def operator(committed):  # type: ignore[no-untyped-def]
    hotel = make_hotel(committed, channels=(ChannelName.BOOKING_COM, ChannelName.AIRBNB))
    key = create_api_key(committed, "t-operator", "operator")[1]
    committed.commit()
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield hotel, client, {"X-API-Key": key}


@pytest.mark.parametrize("field", ["apiKey", "apiSecret", "webhookSecret", "api_secret", "colour"])
@pytest.mark.parametrize("path", ["sync-bookings", "sync-availability", "sync-rates"])
def test_other_config_keys_are_refused_with_422(operator, field, path):  # type: ignore[no-untyped-def]
    hotel, client, auth = operator
    cid = hotel.channels[ChannelName.BOOKING_COM]
    resp = client.post(
        f"/api/channels/{cid}/{path}",
        headers=auth,
        json={"config": {"endpoint": "http://127.0.0.1:9", field: "secret-value-0123456789"}},
    )
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "config_override_refused"
    assert f"refused: {field}" in error["message"]
    assert "endpoint, hotelId, propertyId" in error["message"]
    assert "secret-value" not in resp.text


def test_endpoint_override_must_be_a_url(operator):  # type: ignore[no-untyped-def]
    hotel, client, auth = operator
    cid = hotel.channels[ChannelName.BOOKING_COM]
    resp = client.post(
        f"/api/channels/{cid}/sync-bookings", headers=auth, json={"config": {"endpoint": "file:///etc"}}
    )
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "config_override_refused"


def test_flows_refuse_secret_overrides_too() -> None:
    from tasks.resources import OverrideRefusedError, clean_overrides

    assert clean_overrides({"endpoint": "http://x", "hotelId": "", "propertyId": "p"}) == {
        "endpoint": "http://x",
        "propertyId": "p",
    }
    with pytest.raises(OverrideRefusedError, match="refused: apiSecret") as err:
        clean_overrides({"apiSecret": "hidden-value", "endpoint": "http://x"})
    assert "hidden-value" not in str(err.value)


def test_adapter_is_built_from_stored_config_with_overrides(committed):  # type: ignore[no-untyped-def]
    from tasks import resources

    hotel = make_hotel(committed, channels=(ChannelName.BOOKING_COM,))
    committed.commit()
    cid = hotel.channels[ChannelName.BOOKING_COM]
    point_channel_at(committed, cid, "http://stored.example", apiKey="k1", apiSecret="s1", hotelId="111")

    async def build() -> tuple[object, object]:
        async with resources.adapter_pool():
            plain = resources.adapter_for(cid)
            other = resources.adapter_for(cid, {"endpoint": "http://other.example", "hotelId": OTHER_HOTEL})
            return plain, other

    plain, other = asyncio.run(build())
    assert plain.config.endpoint == "http://stored.example" and plain.hotel_id == "111"  # type: ignore[attr-defined]
    assert other.config.endpoint == "http://other.example" and other.hotel_id == OTHER_HOTEL  # type: ignore[attr-defined]
    assert other.config.api_secret.get_secret_value() == "s1"  # type: ignore[attr-defined]
    assert load_channel_config(committed, cid).endpoint == "http://stored.example"  # not stored


@pytest.mark.usefixtures("prefect_server")
def test_endpoint_and_hotel_overrides_take_effect_for_one_run(committed):  # type: ignore[no-untyped-def]
    """The stored config points at partner A (no bookings); a run with endpoint and hotelId
    overrides pulls B's hotel's bookings from B; the stored config is unchanged."""
    from flows.channel_sync import sync_bookings
    from flows.runner import run_flow

    hotel = make_hotel(committed, units=50, days=400, channels=(ChannelName.BOOKING_COM,))
    committed.commit()
    cid = hotel.channels[ChannelName.BOOKING_COM]
    a = booking_sim(bookings=0, seed=3)
    b = booking_sim(bookings=6, seed=4, hotel_id=OTHER_HOTEL)
    with running_server(a) as url_a, running_server(b) as url_b:
        point_channel_at(committed, cid, url_a, apiKey="k", apiSecret="s")
        # (push_availability off: closing sold nights is a property-wide push to every
        # channel's stored destination, not part of this run's pull)
        out = run_flow(sync_bookings, channel_id=cid, push_availability=False,
                       config_overrides={"endpoint": url_b, "hotelId": OTHER_HOTEL})
        assert out.ok, out.error
        assert out.value["recordsFailed"] == 0, out.value["errors"]
    expected = {str(m.booking.booking_id) for m in b.state.sim.queue.messages}
    stored = set(
        committed.scalars(select(ChannelBooking.external_booking_id).where(ChannelBooking.channel_id == cid))
    )
    assert stored == expected and stored
    assert b.state.sim.queue.stats()["pending"] == 0
    assert not a.state.sim.calls and not a.state.sim.tokens.exchanges  # A was never asked
    assert load_channel_config(committed, cid).endpoint == url_a


@pytest.mark.usefixtures("prefect_server")
def test_every_demo_channel_ingests_from_its_simulator(committed):  # type: ignore[no-untyped-def]
    """`innsync demo seed` channels (as `innsync up` points them at the simulators) each store
    at least one booking their simulator created; Airbnb's listing ids come from its
    room-type mappings, not from propertyId ("host-4711")."""
    from db.demo import seed_demo
    from flows.channel_sync import sync_bookings
    from flows.runner import run_flow

    summary = seed_demo(committed.get_bind(), reservations=20, seed=3, today=date.today())
    channels = {
        ChannelName(c.channel_name): c.id
        for c in committed.scalars(select(Channel).where(Channel.property_id == summary.property_id))
    }
    assert set(channels) == set(ChannelName)
    assert load_channel_config(committed, channels[ChannelName.AIRBNB]).property_id == "host-4711"
    sims = {}
    with ExitStack() as stack:
        # All four at once: a pull closes sold nights on every channel of the property.
        for name, cid in channels.items():
            app = build_app(name, bookings=0, seed=11)
            sims[name] = app.state.sim
            sims[name].generator.next_id += 900_000_000  # as `innsync up` offsets: never a seeded id
            sims[name].add_bookings(8)
            point_channel_at(committed, cid, stack.enter_context(running_server(app)))
        committed.commit()
        for name, cid in channels.items():
            before = stored_count(committed, cid)
            out = run_flow(sync_bookings, channel_id=cid)
            assert out.ok, (name, out.error)
            assert out.value["new"] > 0, f"{name}: nothing ingested ({out.value})"
            assert stored_count(committed, cid) - before == out.value["new"]


def stored_count(session, channel_id: int) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return int(
        session.scalar(
            select(func.count()).select_from(ChannelBooking).where(ChannelBooking.channel_id == channel_id)
        )
    )


@pytest.mark.usefixtures("prefect_server")
def test_a_demo_hotel_group_pulls_each_hotel_from_its_own_account_hotel(committed):  # type: ignore[no-untyped-def]
    """`innsync demo seed --properties 2` with `innsync simulate --hotels 2`: the second
    hotel's four channels store what the simulators' second hotel sold, all of it mapped,
    and nothing of the first hotel's."""
    from channels.simulators.airbnb import confirmation_code
    from channels.simulators.catalog import hotel_catalog
    from db.demo import seed_demo
    from flows.channel_sync import sync_bookings
    from flows.runner import run_flow

    summary = seed_demo(committed.get_bind(), reservations=5, seed=3, today=date.today(),
                        properties=2)
    assert summary.properties == 2 and summary.reservations == 10
    second = committed.scalar(select(Property.id).where(Property.code == "DEMO-0002"))
    channels = {
        ChannelName(c.channel_name): c.id
        for c in committed.scalars(select(Channel).where(Channel.property_id == second))
    }
    assert set(channels) == set(ChannelName)
    with ExitStack() as stack:
        sold: dict[ChannelName, set[str]] = {}
        for name, cid in channels.items():
            app = build_app(name, bookings=0, seed=11, hotels=2)
            for i, hotel in enumerate(app.state.sim.hotels.values()):
                assert hotel.hotel_id == hotel_catalog(name, i)["hotel_id"]
                hotel.generator.next_id += 900_000_000
                hotel.add_bookings(6)
            hotel = list(app.state.sim.hotels.values())[1]
            ids = {m.booking.booking_id for m in hotel.queue.messages}
            sold[name] = {confirmation_code(i) for i in ids} if name is ChannelName.AIRBNB else ids
            point_channel_at(committed, cid, stack.enter_context(running_server(app)))
        committed.commit()
        for name, cid in channels.items():
            seeded = _external_ids(committed, cid)
            out = run_flow(sync_bookings, channel_id=cid)
            assert out.ok, (name, out.error)
            assert out.value["new"] > 0 and out.value["unmapped"] == 0, (name, out.value)
            stored = _external_ids(committed, cid) - seeded
            assert len(stored) == out.value["new"] and stored <= sold[name], name


def _external_ids(session, channel_id: int) -> set[str]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return set(session.scalars(select(ChannelBooking.external_booking_id).where(
        ChannelBooking.channel_id == channel_id)))
