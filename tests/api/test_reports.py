"""Channel report: figures per channel from reservations, sync logs and channels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from db.models import Channel, Reservation
from tests.api.helpers import D, M, assert_error, make_guest, make_property, make_room_type

NOW = datetime(2030, 3, 10, 12, tzinfo=UTC)


def _channel(session, prop, name, channel_name="airbnb", **kw):
    row = Channel(property_id=prop.id, name=name, channel_name=channel_name,
                  config_encrypted="x", **kw)
    session.add(row)
    session.flush()
    return row


def _res(session, prop, rt, guest, ch, ref, ci, nights, amount, status="confirmed",
         created=NOW, **kw):
    row = Reservation(property_id=prop.id, guest_id=guest.id, room_type_id=rt.id,
                      check_in=D(ci), check_out=D(ci) + timedelta(days=nights),
                      amount=M(amount), status=status, channel_id=ch.id if ch else None,
                      external_ref=ref, created_at=created, **kw)
    session.add(row)
    session.flush()
    return row


def _log(session, ch, status, at=NOW):
    session.execute(text("INSERT INTO channel_sync_logs (channel_id, operation, status, "
                         "started_at) VALUES (:c, 'sync_bookings', :s, :t)"),
                    {"c": ch.id, "s": status, "t": at})


def test_channel_report_figures(client, viewer_headers, db_session):
    prop = make_property(db_session, "REP")
    rt = make_room_type(db_session, prop, total_units=9)
    guest = make_guest(db_session)
    air = _channel(db_session, prop, "Airbnb REP",
                   last_successful_sync={"sync_bookings": "2030-03-09T10:00:00+00:00",
                                         "push_rates": "2030-03-10T08:00:00+00:00"})
    bdc = _channel(db_session, prop, "Booking REP", "booking.com")
    quiet = _channel(db_session, prop, "Expedia REP", "expedia", enabled=False)
    # Airbnb: a two-room booking (2 x 3 nights), a 2-night booking, a cancelled one.
    _res(db_session, prop, rt, guest, air, "A1", "2030-03-20", 3, "300.00")
    _res(db_session, prop, rt, guest, air, "A1", "2030-03-20", 3, "300.00", room_index=1)
    _res(db_session, prop, rt, guest, air, "A2", "2030-03-30", 2, "250.00", overbooked=True)
    _res(db_session, prop, rt, guest, air, "A3", "2030-04-09", 1, "99.00", status="cancelled",
         overbooked=True)
    # Outside the window, and a direct reservation: neither counts.
    _res(db_session, prop, rt, guest, air, "A4", "2030-05-01", 1, "80.00",
         created=NOW - timedelta(days=40))
    _res(db_session, prop, rt, guest, None, None, "2030-03-20", 1, "80.00")
    _res(db_session, prop, rt, guest, bdc, "B1", "2030-03-11", 4, "400.00")
    for status in ("success", "success", "partial", "failed", "running", "not_applicable"):
        _log(db_session, air, status)
    _log(db_session, bdc, "success", NOW - timedelta(days=60))

    resp = client.get("/api/reports/channels", headers=viewer_headers,
                      params={"from": "2030-03-01", "to": "2030-03-10", "propertyId": prop.id})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["from"], body["to"]) == ("2030-03-01", "2030-03-10")
    rows = {r["channel"]: r for r in body["channels"]}
    assert list(rows) == ["Airbnb REP", "Booking REP", "Expedia REP"]
    a = rows["Airbnb REP"]
    assert a["channelName"] == "airbnb" and a["enabled"] is True
    assert (a["bookings"], a["reservations"], a["roomNights"]) == (3, 4, 8)
    assert M(a["revenue"]) == M("850.00") and M(a["averageDailyRate"]) == M("106.25")
    assert a["cancellationRate"] == 0.25
    # lead times: 10, 10, 20, 30 days from 2030-03-10
    assert a["averageLeadTimeDays"] == 17.5
    assert (a["syncRuns"], a["syncSuccessRate"]) == (4, 0.5)
    assert a["lastSuccessfulSync"] == "2030-03-10T08:00:00+00:00"
    assert a["openOverbookings"] == 1
    b = rows["Booking REP"]
    assert (b["bookings"], b["roomNights"], b["averageLeadTimeDays"]) == (1, 4, 1.0)
    assert b["syncRuns"] == 0 and b["syncSuccessRate"] is None
    q = rows["Expedia REP"]
    assert q["enabled"] is False and q["bookings"] == 0 and q["averageDailyRate"] is None
    assert q["cancellationRate"] is None and q["lastSuccessfulSync"] is None
    assert quiet.id == q["channelId"]


def test_channel_report_defaults_validation_and_roles(client, viewer_headers):
    resp = client.get("/api/reports/channels", headers=viewer_headers)
    assert resp.status_code == 200
    body = resp.json()
    assert (D(body["to"]) - D(body["from"])).days == 29
    assert_error(client.get("/api/reports/channels", headers=viewer_headers,
                            params={"from": "2030-03-10", "to": "2030-03-01"}),
                 422, "validation_error")
    assert_error(client.get("/api/reports/channels"), 401, "unauthorized")
