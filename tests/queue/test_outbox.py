"""Outbox atomicity with the real per-request session: a PMS write and its queue item
commit together or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.auth import create_api_key
from tests.api.helpers import make_guest, make_property, make_room_type


@pytest.fixture
def real(committed) -> Iterator[tuple[TestClient, dict[str, str], dict[str, Any]]]:
    """The app with its own sessions (commit per request) over committed data."""
    from api.app import create_app

    prop = make_property(committed, "OBX")
    rt = make_room_type(committed, prop, total_units=4)
    guest = make_guest(committed)
    _, key = create_api_key(committed, "outbox-test", "operator")
    committed.commit()
    body = {"propertyId": prop.id, "guestId": guest.id, "roomTypeId": rt.id,
            "checkIn": "2031-01-10", "checkOut": "2031-01-12", "amount": "100.00",
            "confirmationCode": "OBX-1"}
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client, {"X-API-Key": key}, body


def _counts(session) -> tuple[int, int]:
    session.rollback()
    return (session.execute(text("SELECT count(*) FROM reservations")).scalar_one(),
            session.execute(text("SELECT count(*) FROM data_sync_queue")).scalar_one())


def test_write_and_queue_item_commit_together(real, committed):
    client, headers, body = real
    resp = client.post("/api/reservations", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    assert _counts(committed) == (1, 1)


def test_failing_write_leaves_no_queue_item(real, committed):
    client, headers, body = real
    assert client.post("/api/reservations", json=body, headers=headers).status_code == 201
    # Same confirmation code: the database refuses the second reservation.
    resp = client.post("/api/reservations", json={**body, "checkIn": "2031-02-01",
                                                  "checkOut": "2031-02-02"}, headers=headers)
    assert resp.status_code == 409
    assert _counts(committed) == (1, 1)


def test_failing_enqueue_leaves_no_write(real, committed, monkeypatch):
    client, headers, body = real

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("queue unavailable")

    monkeypatch.setattr("api.routers.reservations.enqueue_reservation", broken)
    resp = client.post("/api/reservations", json=body, headers=headers)
    assert resp.status_code == 500
    assert _counts(committed) == (0, 0)
    sold = committed.execute(text("SELECT COALESCE(sum(sold), 0) FROM inventory")).scalar_one()
    assert sold == 0  # the inventory move rolled back with the reservation
