"""Sync-log lists: filters, pagination, and the capped total on very large logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from db.models import ChannelSyncLog


def _logs(db_session, n: int, status: str = "success") -> None:
    now = datetime.now(UTC)
    for i in range(n):
        db_session.add(
            ChannelSyncLog(
                operation="sync_bookings", status=status, started_at=now - timedelta(minutes=i)
            )
        )
    db_session.flush()


def test_filters_and_pagination(client, viewer_headers, db_session):
    _logs(db_session, 7)
    _logs(db_session, 3, status="failed")
    resp = client.get("/api/channel-sync-logs?limit=4&offset=0", headers=viewer_headers)
    page = resp.json()
    assert isinstance(page, list) and len(page) == 4
    assert resp.headers["X-Total-Count"] == "10" and "X-Total-Count-Capped" not in resp.headers
    failed = client.get("/api/channel-sync-logs?status=failed", headers=viewer_headers)
    assert failed.headers["X-Total-Count"] == "3"
    assert {i["status"] for i in failed.json()} == {"failed"}
    starts = [i["startedAt"] for i in page]
    assert starts == sorted(starts, reverse=True)


def test_total_is_capped_on_huge_logs(client, viewer_headers, db_session, monkeypatch):
    import api.paging as paging

    monkeypatch.setattr(paging, "COUNT_CAP", 5)
    _logs(db_session, 8)
    resp = client.get("/api/channel-sync-logs?limit=2", headers=viewer_headers)
    assert len(resp.json()) == 2
    assert resp.headers["X-Total-Count"] == "5" and resp.headers["X-Total-Count-Capped"] == "true"
    # a capped total has no "last" link (it is not known), but a next one
    assert 'rel="last"' not in resp.headers["Link"] and 'rel="next"' in resp.headers["Link"]


def test_bad_filters_are_422(client, viewer_headers):
    resp = client.get("/api/channel-sync-logs?from=yesterday", headers=viewer_headers)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_error"
    assert client.get("/api/channel-sync-logs?limit=0", headers=viewer_headers).status_code == 422
