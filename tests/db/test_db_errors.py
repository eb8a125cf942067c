"""Refused writes map to typed errors (and API statuses) by SQLSTATE, the same on every
supported server: PostgreSQL 15 (local) and 18 (embedded) both run this file in CI.

PostgreSQL 18 reports a delete blocked by an ON DELETE RESTRICT key as 23001
restrict_violation where 15 said 23503 foreign_key_violation; both mean "in use".
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from api.errors import Conflict, Unprocessable, database_error
from db.models import Channel, ChannelBooking, Guest, Property, Reservation
from db.repositories.base import (
    DuplicateError,
    InUseError,
    InvalidDataError,
    add_guarded,
    classify,
    delete_guarded,
    execute_guarded,
    sqlstate_of,
    update_guarded,
)


def _property(session, code: str = "ERR") -> Property:  # type: ignore[no-untyped-def]
    return add_guarded(session, Property(code=code, name=f"Hotel {code}"), "property")


def _reservation(session, prop: Property, **kw) -> Reservation:  # type: ignore[no-untyped-def]
    guest = add_guarded(session, Guest(first_name="Ana", last_name="Lima"), "guest")
    values = {"property_id": prop.id, "guest_id": guest.id, "check_in": date(2030, 1, 1),
              "check_out": date(2030, 1, 2)} | kw
    return add_guarded(session, Reservation(**values), "reservation")


def _server_major(session) -> int:  # type: ignore[no-untyped-def]
    return int(session.execute(text("SHOW server_version_num")).scalar_one()) // 10000


def test_delete_of_a_restricted_row_is_in_use_and_names_the_dependent_table(db_session):
    prop = _property(db_session)
    _reservation(db_session, prop)
    with pytest.raises(InUseError) as caught:
        delete_guarded(db_session, prop, f"property {prop.id}")
    assert "reservations" in caught.value.message
    assert "fk_reservations_property_id_properties" in caught.value.message
    # The session is still usable and the row is still there.
    assert db_session.get(Property, prop.id) is prop


def test_raw_sqlstate_differs_by_server_version_but_not_the_mapping(db_session):
    """Documents why the mapping goes by SQLSTATE: the raw code changed in PostgreSQL 18."""
    prop = _property(db_session)
    _reservation(db_session, prop)
    with pytest.raises(DBAPIError) as caught, db_session.begin_nested():
        db_session.execute(text("DELETE FROM properties WHERE id = :i"), {"i": prop.id})
    expected = "23001" if _server_major(db_session) >= 18 else "23503"
    assert sqlstate_of(caught.value) == expected
    mapped = classify(caught.value, "property")
    assert isinstance(mapped, InUseError) and "reservations" in mapped.message


def test_channel_with_bookings_is_in_use(db_session):
    chan = add_guarded(db_session, Channel(name="busy", channel_name="agoda",
                                           config_encrypted="x", config_public={}), "channel")
    add_guarded(db_session, ChannelBooking(channel_id=chan.id, external_booking_id="B1",
                                           status="confirmed"), "booking")
    with pytest.raises(InUseError, match="channel_bookings"):
        delete_guarded(db_session, chan, "channel")


def test_plain_foreign_key_on_delete_is_in_use(db_session):
    """A NO ACTION key (23503 on every version) found through the DELETE statement."""
    db_session.execute(text("CREATE TEMP TABLE err_parent (id int PRIMARY KEY)"))
    db_session.execute(text("CREATE TEMP TABLE err_child (id int, parent_id int NOT NULL "
                            "CONSTRAINT err_child_parent_fk REFERENCES err_parent (id))"))
    db_session.execute(text("INSERT INTO err_parent VALUES (1); INSERT INTO err_child VALUES (1, 1)"))
    with pytest.raises(InUseError) as caught:
        execute_guarded(db_session, "parent 1", text("DELETE FROM err_parent WHERE id = 1"))
    assert "err_child" in caught.value.message and "err_child_parent_fk" in caught.value.message


def test_missing_reference_on_insert_is_invalid(db_session):
    guest = add_guarded(db_session, Guest(first_name="Ana", last_name="Lima"), "guest")
    with pytest.raises(InvalidDataError, match="refers to a row that does not exist"):
        add_guarded(db_session, Reservation(property_id=987_654_321, guest_id=guest.id,
                                            check_in=date(2030, 1, 1),
                                            check_out=date(2030, 1, 2)), "reservation")


def test_unique_violation_is_duplicate(db_session):
    _property(db_session, "DUPE")
    with pytest.raises(DuplicateError, match="already exists"):
        _property(db_session, "DUPE")


def test_not_null_violation_names_the_column(db_session):
    with pytest.raises(InvalidDataError, match=r"properties\.name is required"):
        add_guarded(db_session, Property(code="NN", name=None), "property")


def test_check_violation_names_the_constraint(db_session):
    prop = _property(db_session)
    res = _reservation(db_session, prop)
    with pytest.raises(InvalidDataError, match="stay_order"):
        update_guarded(db_session, res, {"check_out": date(2029, 12, 1)}, "reservation")


def test_numeric_out_of_range_is_invalid_not_a_crash(db_session):
    prop = _property(db_session)
    res = _reservation(db_session, prop)
    with pytest.raises(InvalidDataError, match="22003"):
        update_guarded(db_session, res, {"adults": 2**40}, "reservation")


@pytest.mark.parametrize(("error", "status"), [
    (DuplicateError("x"), 409), (InUseError("x"), 409), (InvalidDataError("x"), 422)])
def test_api_status_of_repository_errors(error, status):
    mapped = database_error(error)
    assert mapped is not None and mapped.status_code == status


def test_unguarded_refused_write_is_a_4xx_body_not_a_500(db_session):
    """A database error that escapes a router unguarded still answers by SQLSTATE."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from api.errors import install_error_handlers

    prop = _property(db_session)
    _reservation(db_session, prop)
    app = FastAPI()
    install_error_handlers(app)

    @app.delete("/raw-delete")
    def _raw_delete() -> None:
        with db_session.begin_nested():
            db_session.execute(text("DELETE FROM properties WHERE id = :i"), {"i": prop.id})

    @app.post("/raw-range")
    def _raw_range() -> None:
        with db_session.begin_nested():
            db_session.execute(text("UPDATE reservations SET adults = 3000000000"))

    @app.post("/raw-bug")
    def _raw_bug() -> None:
        with db_session.begin_nested():
            db_session.execute(text("SELECT no_such_column FROM properties"))

    with TestClient(app, raise_server_exceptions=False) as client:
        deleted = client.delete("/raw-delete")
        ranged = client.post("/raw-range")
        bug = client.post("/raw-bug")
    assert deleted.status_code == 409, deleted.text
    assert deleted.json()["error"]["code"] == "conflict"
    assert "reservations" in deleted.json()["error"]["message"]
    assert ranged.status_code == 422, ranged.text
    assert ranged.json()["error"]["code"] == "validation_error"
    # Not a refused write (42703 undefined column): a bug stays a 500, with no detail leaked.
    assert bug.status_code == 500
    assert bug.json()["error"] == {"code": "internal_error", "message": "internal server error",
                                   "details": None}


def test_database_error_ignores_other_exceptions():
    assert database_error(RuntimeError("boom")) is None
    assert isinstance(database_error(DuplicateError("d")), Conflict)
    assert isinstance(database_error(InvalidDataError("i")), Unprocessable)
