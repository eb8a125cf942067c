"""Backup API: roles, path checks, error mapping, and one real flow-run round trip."""

from __future__ import annotations

import uuid

import pytest

from db.backup.restore import ValidationFailed
from db.backup.validate import Problem
from flows.runner import FlowOutcome

ENDPOINTS = [
    ("post", "/api/backup/create", {"createdBy": "x", "options": {}}),
    ("get", "/api/backup/list", None),
    ("post", "/api/backup/restore", {"filePath": "x", "options": {}}),
    ("post", "/api/backup/verify", {"filePath": "x"}),
    ("post", "/api/backup/prune", {"dryRun": True}),
    ("delete", "/api/backup/1", None),
]


@pytest.mark.parametrize("role", ["viewer", "operator"])
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_non_admin_is_forbidden(client, make_key, role, method, path, body) -> None:  # type: ignore[no-untyped-def]
    headers = make_key(role)
    kwargs = {"json": body} if body is not None else {}
    resp = client.request(method, path, headers=headers, **kwargs)
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"]["code"] == "forbidden"


def test_no_key_is_unauthorized(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/api/backup/list").status_code == 401


@pytest.mark.parametrize("bad", ["../outside", "/etc", "nightly/../../x", "s3://evil/x",
                                 "file:///etc/passwd"])
def test_path_traversal_is_refused(client, admin_headers, bad) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/api/backup/create", headers=admin_headers,
                       json={"createdBy": "x", "options": {"location": bad}})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "backup_path_not_allowed"
    for path in ("/api/backup/restore", "/api/backup/verify"):
        resp = client.post(path, headers=admin_headers, json={"filePath": bad})
        assert resp.status_code == 400, resp.text


def test_symlink_escape_is_refused(client, admin_headers) -> None:  # type: ignore[no-untyped-def]
    from innsync.settings import get_settings

    root = get_settings().resolved_backup_root
    root.mkdir(parents=True, exist_ok=True)
    link = root / f"escape-{uuid.uuid4().hex[:6]}"
    link.symlink_to("/tmp")
    resp = client.post("/api/backup/restore", headers=admin_headers,
                       json={"filePath": f"{link.name}/b1", "options": {}})
    assert resp.status_code == 400


def test_unknown_fields_are_422(client, admin_headers) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/api/backup/create", headers=admin_headers,
                       json={"createdBy": "x", "options": {"compres": False}})
    assert resp.status_code == 422


def test_validation_problems_are_reported(client, admin_headers, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import api.routers.backup as router

    problems = [Problem("reservations", "check", "violates stay_order", rows=2),
                Problem("guests", "length", "too long", "first_name", 1)]
    monkeypatch.setattr(router, "run_flow", lambda flow, **kw: FlowOutcome(
        uuid.uuid4(), False, error=ValidationFailed(problems)))
    resp = client.post("/api/backup/restore", headers=admin_headers,
                       json={"filePath": "b1", "options": {"skipExisting": False,
                                                           "validateData": True}})
    assert resp.status_code == 422
    body = resp.json()["error"]
    assert body["code"] == "backup_validation_failed"
    assert len(body["details"]["problems"]) == 2 and body["details"]["flowRunId"]


@pytest.mark.usefixtures("prefect_server")
def test_a_restore_is_recorded_as_done_by_the_key_that_asked(client, make_key, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The restore flow writes its own audit row (in the restore's transaction): the API
    hands it the caller, never "unknown\"."""
    import api.routers.backup as router
    from tasks.results import RestoreOutcome

    asked: dict = {}

    def fake_run_flow(flow, **kw):  # type: ignore[no-untyped-def]
        asked.update(kw)
        return FlowOutcome(uuid.uuid4(), True, value=RestoreOutcome(
            file_path="b1", backup_id=7, tables={"guests": 3}))

    monkeypatch.setattr(router, "run_flow", fake_run_flow)
    resp = client.post("/api/backup/restore", headers=make_key("admin", "night-auditor"),
                       json={"backupId": 7, "options": {}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["tables"] == {"guests": 3}
    assert "night-auditor" in asked["restored_by"]


def test_create_list_verify_delete_through_flows(client, admin_headers) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/api/backup/create", headers=admin_headers, json={
        "createdBy": "api-test",
        "options": {"includeAuditLogs": True, "includeSystemSettings": False, "compress": True,
                    "location": "api"}})
    assert resp.status_code == 200, resp.text
    created = resp.json()
    assert created["success"] and created["filePath"] and created["flowRunId"]
    backup_id = created["backupId"]
    resp = client.get("/api/backup/list", headers=admin_headers)
    listed = resp.json()
    mine = [b for b in listed if b["id"] == backup_id][0]
    assert mine["status"] == "completed" and mine["filePath"] == created["filePath"]
    assert int(resp.headers["X-Total-Count"]) >= 1 and 'rel="first"' in resp.headers["Link"]
    resp = client.post("/api/backup/verify", headers=admin_headers,
                       json={"filePath": created["filePath"]})
    assert resp.status_code == 200 and resp.json()["ok"], resp.text
    resp = client.post("/api/backup/prune", headers=admin_headers, json={"dryRun": True})
    assert resp.status_code == 200 and resp.json()["dryRun"]
    resp = client.delete(f"/api/backup/{backup_id}", headers=admin_headers)
    assert resp.status_code == 200 and resp.json()["success"]
    assert client.delete(f"/api/backup/{backup_id}", headers=admin_headers).status_code == 404


@pytest.mark.usefixtures("prefect_server")
def test_incremental_through_the_api(client, admin_headers) -> None:  # type: ignore[no-untyped-def]
    location = f"incr-{uuid.uuid4().hex[:6]}"
    resp = client.post("/api/backup/create", headers=admin_headers, json={
        "createdBy": "api-test", "options": {"incremental": True, "location": location}})
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "incremental_refused"
    full = client.post("/api/backup/create", headers=admin_headers, json={
        "createdBy": "api-test", "options": {"location": location}}).json()
    resp = client.post("/api/backup/create", headers=admin_headers, json={
        "createdBy": "api-test", "options": {"incremental": True, "location": location}})
    assert resp.status_code == 200, resp.text
    incr = resp.json()
    items = client.get("/api/backup/list", headers=admin_headers).json()
    mine = [b for b in items if b["id"] == incr["backupId"]][0]
    assert mine["backupType"] == "incremental" and mine["parentId"] == full["backupId"]
    resp = client.post("/api/backup/verify", headers=admin_headers,
                       json={"backupId": incr["backupId"]})
    assert resp.status_code == 200 and resp.json()["ok"], resp.text
    resp = client.delete(f"/api/backup/{full['backupId']}", headers=admin_headers)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "backup_has_children"
    resp = client.delete(f"/api/backup/{full['backupId']}?force=true", headers=admin_headers)
    assert resp.status_code == 200, resp.text
    assert client.delete(f"/api/backup/{incr['backupId']}",
                         headers=admin_headers).status_code == 404
