"""Partner accounts (issue 13): one Booking.com provider account serves several hotels; the
scheduled pull asks the partner once per page for all of them, routes each reservation to
its channel by hotel code, and keeps reservations of unknown hotels as unroutable, not
acknowledged."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from channels.base import ChannelConfig, ChannelName
from channels.simulators.catalog import hotel_catalog
from db.models import ChannelRateMapping, ChannelRoomMapping
from db.repositories.accounts import create_account, effective_config, sealed_configs
from flows.runner import run_flow
from flows.scheduled import batches, pull_batch
from tests.sync.conftest import make_hotel

B = ChannelName.BOOKING_COM


def connect_hotels(session: Session, count: int, partner: ChannelName = B,
                   endpoint: str = "http://127.0.0.1:9") -> tuple[int, list[int]]:
    """An account of `partner` and `count` hotels connected to it, hotel i mapped to hotel i
    of the simulated account (its own hotel id, room and rate codes)."""
    from db.repositories.channels import update_channel_config

    account = create_account(session, name=f"acct-{partner.value}-{id(session)}-{count}",
                             channel_name=partner.value,
                             config=ChannelConfig.model_validate(
                                 {"apiKey": "machine-account", "apiSecret": "s3cret-account",
                                  "endpoint": endpoint}))
    channels = []
    for i in range(count):
        cid = make_hotel(session, days=40, channels=(partner,)).channels[partner]
        cat = hotel_catalog(partner, i)
        session.execute(text("UPDATE channels SET account_id = :a WHERE id = :c"),
                        {"a": account.id, "c": cid})
        update_channel_config(session, cid, {"apiKey": None, "apiSecret": None,
                                             "hotelId": cat["hotel_id"]})
        for m in session.query(ChannelRoomMapping).filter_by(channel_id=cid):
            code = next(k for k, v in hotel_catalog(partner, 0)["room_types"].items()
                        if v == m.partner_room_code)
            m.partner_room_code = cat["room_types"][code]
        base_rates = {v: k for k, v in hotel_catalog(partner, 0)["rate_plans"].items()}
        for r in session.query(ChannelRateMapping).filter_by(channel_id=cid):
            code = next(k for k, v in hotel_catalog(partner, 0)["room_types"].items()
                        if v == r.partner_room_code)
            r.partner_room_code = cat["room_types"][code]
            r.partner_rate_code = cat["rate_plans"][base_rates[r.partner_rate_code]]
        channels.append(cid)
    session.commit()
    return account.id, channels


def test_an_account_channel_uses_the_account_credentials(db_session: Session) -> None:
    account, (cid,) = connect_hotels(db_session, 1)
    sealed = sealed_configs(db_session, cid)
    assert sealed is not None and sealed.account_id == account
    own = effective_config(sealed.channel, None)
    assert own.api_key is None  # the credentials live on the account only
    config = effective_config(sealed.channel, sealed.account)
    assert config.api_key is not None and config.api_key.get_secret_value() == "machine-account"
    assert config.hotel_id == hotel_catalog(B, 0)["hotel_id"]
    assert config.endpoint == "http://127.0.0.1:9"


def test_an_account_of_one_partner_takes_no_channel_of_another(db_session: Session) -> None:
    from sqlalchemy.exc import IntegrityError

    account, _ = connect_hotels(db_session, 1)
    other = make_hotel(db_session, days=1, channels=(ChannelName.AGODA,)).channels[ChannelName.AGODA]
    with pytest.raises(IntegrityError):
        with db_session.begin_nested():
            db_session.execute(text("UPDATE channels SET account_id = :a WHERE id = :c"),
                               {"a": account, "c": other})


def test_an_account_s_channels_make_one_batch() -> None:
    rows = [(i, f"b{i}", "booking.com") for i in range(1, 8)] + [(20, "a", "agoda"),
                                                               (21, "a2", "agoda")]
    accounts = {1: 100, 2: 100, 3: 100, 4: 100, 5: 200, 20: 300, 21: 300}
    groups = batches(rows, 2, accounts)
    ids = [[r[0] for r in g] for g in groups]
    # Booking.com's account queue is one: its channels stay together past the batch size;
    # a channel with its own credentials, and other partners, are cut as before.
    assert [1, 2, 3, 4] in ids and [5] in ids and [6, 7] in ids
    assert [20, 21] in ids


@pytest.mark.usefixtures("prefect_server")
@pytest.mark.parametrize("partner", [B, ChannelName.EXPEDIA])
def test_one_request_per_account_page_routes_by_hotel_code_and_keeps_unroutable(
        committed: Session, partner: ChannelName) -> None:
    """Three hotels on one account (a Booking.com provider account, an Expedia EQC user),
    two connected here: the batch asks the partner once for both (not once per hotel),
    stores each hotel's reservations on its channel, acknowledges them, and keeps the third
    hotel's as unroutable, unacknowledged."""
    from channels.simulators.server import build_app, running_server
    from db.repositories.accounts import update_account_config

    account, channels = connect_hotels(committed, 2, partner)
    sim = build_app(partner, bookings=4, seed=11, hotels=3)
    state: Any = sim.state.sim
    stranger = hotel_catalog(partner, 2)["hotel_id"]
    gets: Counter[str] = Counter()

    @sim.middleware("http")
    async def count_gets(request: Any, call_next: Any) -> Any:
        if request.method == "GET":
            gets[request.url.path.rsplit("/", 1)[-1]] += 1
        return await call_next(request)

    with running_server(sim) as url:
        update_account_config(committed, account, {"endpoint": url})
        committed.commit()
        out = run_flow(pull_batch, channel_ids=channels, max_pages=10)
        assert out.ok, out.error
        calls = dict(state.calls)
    lines = {line["channel_id"]: line for line in out.value["channels"]}
    assert all(lines[c]["state"] == "COMPLETED" for c in channels), lines
    # One fetch per page for the whole account. The pages: the first, those the acks
    # released (a modification after its booking, a cancellation after that), the empty
    # one that ends the pull: at most 4 for any number of hotels, where a pull per hotel
    # makes as many for each hotel.
    if partner is B:
        assert gets["OTA_HotelResNotif"] == gets["OTA_HotelResModifyNotif"] <= 4, (gets, calls)
        assert calls.get("/token-based-authentication/exchange") == 1  # one token
    else:
        assert 2 <= calls["/eqc/br"] <= 4, calls  # BookingRetrievalRQ without a Hotel
    stored = committed.execute(text(
        "SELECT channel_id, count(*) FROM channel_bookings WHERE channel_id = ANY(:c) "
        "GROUP BY channel_id"), {"c": channels}).all()
    committed.rollback()
    for i, cid in enumerate(channels):
        hotel = state.hotels[hotel_catalog(partner, i)["hotel_id"]]
        ids = {m.booking.booking_id for m in hotel.queue.messages}
        assert dict(stored)[cid] == lines[cid]["new"] == len(ids) >= 4  # on its own channel
        assert hotel.queue.stats()["pending"] == 0  # every routed reservation acknowledged
    # The unconnected hotel's reservations: recorded for operators, never acknowledged.
    assert state.hotels[stranger].queue.stats()["acked"] == 0
    rows = committed.execute(text(
        "SELECT hotel_code, count(*), min(times_seen) FROM unroutable_reservations "
        "WHERE account_id = :a GROUP BY hotel_code"), {"a": account}).all()
    committed.rollback()
    strangers = {m.booking.booking_id for m in state.hotels[stranger].queue.messages
                 if m.booking.event == "new"}
    assert [(r[0], r[1]) for r in rows] == [(stranger, len(strangers))]
    logs = committed.execute(text(
        "SELECT status FROM channel_sync_logs WHERE channel_id = ANY(:c)"),
        {"c": channels}).scalars().all()
    committed.rollback()
    assert sorted(logs) == ["success", "success"]  # a sync log per channel, as before
    # Each hotel's sold nights were closed on its channel: what the partner acknowledged
    # equals what is left, night by night, for the nights its bookings took.
    for cid in channels:
        closed = committed.execute(text(
            "SELECT count(*), count(*) FILTER (WHERE s.available = GREATEST(i.total - i.sold - i.held, 0)) "
            "FROM channel_availability_state s JOIN inventory i ON i.room_type_id = "
            "s.room_type_id AND i.date = s.date WHERE s.channel_id = :c"), {"c": cid}).one()
        committed.rollback()
        assert closed[0] > 0 and closed[0] == closed[1], closed
    push = "/hotels/ota/OTA_HotelAvailNotif" if partner is B else "/eqc/ar"
    assert calls.get(push, 0) >= 2, calls


@pytest.mark.usefixtures("prefect_server")
def test_an_account_whose_partner_fails_ends_each_channel_failed_with_nothing_acknowledged(
        committed: Session) -> None:
    """Every fetch answered 503 (retried, then given up): each channel of the account ends
    FAILED with a failed sync log naming the page, nothing is stored, nothing acknowledged,
    and the batch drops its leases, so the next cycle pulls them again."""
    from channels.simulators.common import FaultSettings
    from channels.simulators.server import build_app, running_server
    from db.repositories.accounts import update_account_config
    from db.repositories.pull_leases import leased_channels

    account, channels = connect_hotels(committed, 2)
    sim = build_app(B, bookings=3, seed=5, hotels=2, faults=FaultSettings(error_rate=1.0))
    state: Any = sim.state.sim
    with running_server(sim) as url:
        update_account_config(committed, account, {"endpoint": url})
        committed.commit()
        out = run_flow(pull_batch, channel_ids=channels, max_pages=5)
    assert not out.ok  # no channel of the batch could be pulled: the run is Failed
    logs = committed.execute(text(
        "SELECT status, error_messages FROM channel_sync_logs WHERE channel_id = ANY(:c)"),
        {"c": channels}).all()
    stored = committed.execute(text(
        "SELECT count(*) FROM channel_bookings WHERE channel_id = ANY(:c)"),
        {"c": channels}).scalar()
    committed.rollback()
    assert sorted(status for status, _ in logs) == ["failed", "failed"]
    assert all(any("page 1" in e for e in errors) for _, errors in logs), logs
    assert stored == 0
    assert all(h.queue.stats()["acked"] == 0 for h in state.hotels.values())
    assert not set(leased_channels(committed)) & set(channels)
