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
    page = client.get("/api/channel-sync-logs?limit=4&offset=0", headers=viewer_headers).json()
    assert (page["total"], page["totalCapped"], len(page["items"])) == (10, False, 4)
    failed = client.get("/api/channel-sync-logs?status=failed", headers=viewer_headers).json()
    assert failed["total"] == 3 and {i["status"] for i in failed["items"]} == {"failed"}
    starts = [i["startedAt"] for i in page["items"]]
    assert starts == sorted(starts, reverse=True)


def test_total_is_capped_on_huge_logs(client, viewer_headers, db_session, monkeypatch):
    import api.routers.channel_sync as router

    monkeypatch.setattr(router, "COUNT_CAP", 5)
    _logs(db_session, 8)
    page = client.get("/api/channel-sync-logs?limit=2", headers=viewer_headers).json()
    assert (page["total"], page["totalCapped"], len(page["items"])) == (5, True, 2)


def test_bad_filters_are_422(client, viewer_headers):
    resp = client.get("/api/channel-sync-logs?from=yesterday", headers=viewer_headers)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "validation_error"
    assert client.get("/api/channel-sync-logs?limit=0", headers=viewer_headers).status_code == 422
