"""Demo seed: counts, integrity, sold = active nights, exact amounts, encrypted channels."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest
from sqlalchemy import text

from channels.base import ChannelName
from db import demo_data as d
from db.demo import DemoExistsError, seed_demo, simulator_endpoints
from db.repositories.channels import load_channel_config

TODAY = date(2031, 3, 1)
N = 500


def scalar(session, sql, **params):
    return session.execute(text(sql), params).scalar_one()


@pytest.fixture
def seeded(db_session):
    conn = db_session.connection().connection.driver_connection
    summary = seed_demo(conn, reservations=N, seed=7, today=TODAY, batch_size=128)
    return summary


def test_counts(seeded, db_session):
    p = seeded.property_id
    assert scalar(db_session, "SELECT count(*) FROM reservations WHERE property_id = :p", p=p) == N
    assert scalar(db_session, "SELECT count(DISTINCT guest_id) FROM reservations "
                              "WHERE property_id = :p", p=p) == N
    assert scalar(db_session, "SELECT count(*) FROM room_types WHERE property_id = :p", p=p) == 4
    assert scalar(db_session, "SELECT count(*) FROM rate_plans WHERE property_id = :p", p=p) == 12
    assert scalar(db_session, "SELECT count(*) FROM inventory i JOIN room_types t "
                              "ON t.id = i.room_type_id WHERE t.property_id = :p", p=p) == 4 * 365
    assert scalar(db_session, "SELECT count(*) FROM rates r JOIN rate_plans rp "
                              "ON rp.id = r.rate_plan_id WHERE rp.property_id = :p", p=p) == 12 * 365
    assert scalar(db_session, "SELECT min(date) FROM inventory i JOIN room_types t "
                              "ON t.id = i.room_type_id WHERE t.property_id = :p", p=p) == TODAY
    assert scalar(db_session, "SELECT count(*) FROM rooms WHERE property_id = :p", p=p) \
        == scalar(db_session, "SELECT sum(total_units) FROM room_types WHERE property_id = :p",
                  p=p) == seeded.rooms
    channel_rows = scalar(db_session, "SELECT count(*) FROM reservations WHERE property_id = :p "
                                      "AND source_channel IS NOT NULL", p=p)
    assert seeded.channel_bookings == channel_rows > N // 2
    assert scalar(db_session, "SELECT count(*) FROM channels WHERE property_id = :p", p=p) == 4
    assert scalar(db_session, "SELECT count(*) FROM channel_room_mappings m JOIN channels c "
                              "ON c.id = m.channel_id WHERE c.property_id = :p", p=p) == 16
    # Airbnb maps only BAR: 3 channels x 12 plans + 4
    assert scalar(db_session, "SELECT count(*) FROM channel_rate_mappings m JOIN channels c "
                              "ON c.id = m.channel_id WHERE c.property_id = :p", p=p) == 40


def test_referential_integrity(seeded, db_session):
    p = seeded.property_id
    # the foreign keys dropped for the load are back, under their names
    fks = scalar(db_session, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND "
                             "conrelid IN ('reservations'::regclass, 'channel_bookings'::regclass)")
    assert fks == 8
    mismatched = scalar(db_session, """
        SELECT count(*) FROM channel_bookings cb
        JOIN reservations r ON r.id = cb.reservation_id
        JOIN channels c ON c.id = cb.channel_id
        WHERE r.property_id = :p AND (r.channel_id <> c.id OR r.source_channel <> c.channel_name
              OR r.external_ref <> cb.external_booking_id)""", p=p)
    assert mismatched == 0
    orphans = scalar(db_session, """
        SELECT count(*) FROM reservations r
        LEFT JOIN rate_plans rp ON rp.id = r.rate_plan_id
        WHERE r.property_id = :p AND (rp.room_type_id IS DISTINCT FROM r.room_type_id)""", p=p)
    assert orphans == 0


def test_sold_is_active_nights(seeded, db_session):
    """sold(room type, date) = reservations in ACTIVE_STATUSES staying that night."""
    p = seeded.property_id
    diff = scalar(db_session, """
        WITH nights AS (
            SELECT r.room_type_id, n::date AS date, count(*) AS sold
            FROM reservations r, generate_series(r.check_in, r.check_out - 1, '1 day') n
            WHERE r.property_id = :p AND r.status = ANY(:active)
            GROUP BY 1, 2)
        SELECT count(*) FROM inventory i JOIN room_types t ON t.id = i.room_type_id
        LEFT JOIN nights USING (room_type_id, date)
        WHERE t.property_id = :p AND i.sold <> coalesce(nights.sold, 0)""",
        p=p, active=sorted(d.ACTIVE_STATUSES))
    assert diff == 0
    assert scalar(db_session, "SELECT sum(sold) FROM inventory i JOIN room_types t "
                              "ON t.id = i.room_type_id WHERE t.property_id = :p", p=p) > N
    assert scalar(db_session, "SELECT count(*) FROM inventory i JOIN room_types t "
                              "ON t.id = i.room_type_id WHERE t.property_id = :p "
                              "AND i.sold > i.total", p=p) == 0


def test_amounts_are_exact_sums_of_rates(seeded, db_session):
    p = seeded.property_id
    rows = db_session.execute(text("""
        SELECT r.amount, sum(rt.amount) AS nightly, count(rt.*) AS nights,
               r.check_out - r.check_in AS los
        FROM reservations r JOIN rates rt ON rt.rate_plan_id = r.rate_plan_id
             AND rt.date >= r.check_in AND rt.date < r.check_out
        WHERE r.property_id = :p AND r.check_in >= :today
        GROUP BY r.id"""), {"p": p, "today": TODAY}).all()
    full = [r for r in rows if r.nights == r.los]
    assert len(full) > N // 2
    assert all(r.amount == r.nightly for r in full)
    assert all(isinstance(r.amount, Decimal) and r.amount.as_tuple().exponent == -2 for r in full)


def test_statuses_names_and_channels(seeded, db_session):
    p = seeded.property_id
    by_status = dict(db_session.execute(text(
        "SELECT status, count(*) FROM reservations WHERE property_id = :p GROUP BY 1"),
        {"p": p}).all())
    assert by_status["confirmed"] > N / 2 and by_status["cancelled"] > 0
    assert by_status.get("checked_out", 0) > 0
    assert scalar(db_session, "SELECT count(*) FROM reservations WHERE property_id = :p AND "
                              "status IN ('checked_out', 'no_show') AND check_out > :t",
                  p=p, t=TODAY) == 0
    assert scalar(db_session, "SELECT count(*) FROM reservations WHERE property_id = :p AND "
                              "status = 'confirmed' AND check_in < :t", p=p, t=TODAY) == 0
    names = db_session.execute(text(
        "SELECT g.last_name FROM guests g JOIN reservations r ON r.guest_id = g.id "
        "WHERE r.property_id = :p"), {"p": p}).scalars().all()
    assert any(not n.isascii() for n in names)
    endpoints = simulator_endpoints()
    for channel_id, name, cipher in db_session.execute(text(
            "SELECT id, channel_name, config_encrypted FROM channels WHERE property_id = :p"),
            {"p": p}):
        config = load_channel_config(db_session, channel_id)
        assert config.endpoint == endpoints[ChannelName(name)]
        assert config.api_secret.get_secret_value() not in cipher


def test_seeding_twice_is_refused_and_reset_replaces(seeded, db_session):
    conn = db_session.connection().connection.driver_connection
    with pytest.raises(DemoExistsError, match="--reset"):
        seed_demo(conn, reservations=10, today=TODAY)
    amounts = scalar(db_session, "SELECT sum(amount) FROM reservations WHERE property_id = :p",
                     p=seeded.property_id)
    guests = scalar(db_session, "SELECT count(*) FROM guests")
    again = seed_demo(conn, reservations=N, seed=7, today=TODAY, reset=True, batch_size=200)
    assert again.property_id != seeded.property_id
    assert scalar(db_session, "SELECT count(*) FROM properties WHERE code = 'DEMO'") == 1
    assert scalar(db_session, "SELECT count(*) FROM guests") == guests
    # same seed, same data (batches are seeded by index, so the batch size matters)
    same = seed_demo(conn, reservations=N, seed=7, today=TODAY, reset=True, batch_size=128)
    assert scalar(db_session, "SELECT sum(amount) FROM reservations WHERE property_id = :p",
                  p=same.property_id) == amounts


def test_stay_cents_matches_nightly_prices():
    prices = d.PriceTable.build(TODAY)
    batch = d.generate_batch(1, 0, 50)
    cents = prices.stay_cents(batch.room_type, batch.plan, batch.start, batch.nights)
    for i in range(50):
        expected = sum(d.nightly_price(int(batch.room_type[i]), int(batch.plan[i]),
                                       TODAY + timedelta(days=int(batch.start[i]) + k))
                       for k in range(int(batch.nights[i])))
        assert cents[i] == int(expected * 100)
    assert d.nightly_price(0, 0, date(2031, 7, 4)) == Decimal("122.82")  # Fri in July: 89 x 1.15 x 1.20
    assert np.all(batch.plan[batch.source == d.SOURCES.index(ChannelName.AIRBNB)] == d.BAR)


def test_a_demo_group_connects_each_hotel_to_its_own_partner_hotel(db_session):
    from channels.simulators.catalog import hotel_catalog
    from db.repositories.demo import channels_of_property, count_channels_outside

    conn = db_session.connection().connection.driver_connection
    summary = seed_demo(conn, reservations=20, seed=7, today=TODAY, properties=3)
    assert summary.properties == 3 and summary.reservations == 60
    codes = db_session.execute(text(
        "SELECT code FROM properties WHERE code LIKE 'DEMO%' ORDER BY id")).scalars().all()
    assert codes == ["DEMO", "DEMO-0002", "DEMO-0003"]
    keys: dict[ChannelName, set[str | None]] = {channel: set() for channel in ChannelName}
    for index, code in enumerate(codes):
        p = scalar(db_session, "SELECT id FROM properties WHERE code = :c", c=code)
        assert scalar(db_session, "SELECT count(*) FROM reservations WHERE property_id = :p",
                      p=p) == 20
        for channel in ChannelName:
            catalog = hotel_catalog(channel, index)
            cid = scalar(db_session, "SELECT id FROM channels WHERE property_id = :p AND "
                                     "channel_name = :n", p=p, n=channel.value)
            config = load_channel_config(db_session, cid)
            assert config.hotel_id == catalog["hotel_id"]
            keys[channel].add(config.api_key.get_secret_value() if config.api_key else None)
            rooms = set(db_session.execute(text(
                "SELECT partner_room_code FROM channel_room_mappings WHERE channel_id = :c"),
                {"c": cid}).scalars())
            assert rooms == set(catalog["room_types"].values())
    # One partner account serves the group: its hotels share the credentials (one token),
    # held by the account, the channels holding only their hotel ids.
    assert all(len(found) == 1 and None not in found for found in keys.values()), keys
    accounts = db_session.execute(text(
        "SELECT channel_name, count(DISTINCT account_id), count(*) FILTER (WHERE account_id "
        "IS NULL) FROM channels GROUP BY channel_name")).all()
    assert sorted(accounts) == sorted((c.value, 1, 0) for c in ChannelName)
    assert len(channels_of_property(db_session, "DEMO")) == 12  # the group's channels
    assert count_channels_outside(db_session, "DEMO") == 0
    with pytest.raises(DemoExistsError):
        seed_demo(conn, reservations=1, today=TODAY)
    again = seed_demo(conn, reservations=2, today=TODAY, reset=True)  # the whole group goes
    assert again.properties == 1
    assert scalar(db_session, "SELECT count(*) FROM properties WHERE code LIKE 'DEMO%'") == 1
