"""One list convention: a JSON array, X-Total-Count, RFC 8288 Link; one casing (camelCase)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from tests.api.helpers import make_property

LINK = re.compile(r'<([^>]+)>; rel="(\w+)"')


def _links(header: str) -> dict[str, dict[str, list[str]]]:
    """rel -> query parameters of its URL."""
    return {rel: parse_qs(urlsplit(url).query) for url, rel in LINK.findall(header)}


def test_list_is_an_array_with_total_and_links(client, viewer_headers, db_session):
    for i in range(7):
        make_property(db_session, f"PL{i}")
    past = client.get("/api/properties?limit=3&offset=3&code=PL1", headers=viewer_headers)
    assert past.json() == [] and past.headers["X-Total-Count"] == "1"
    assert _links(past.headers["Link"])["prev"]["offset"] == ["0"]
    resp = client.get("/api/properties", params={"limit": 3, "offset": 3},
                      headers=viewer_headers)
    assert resp.status_code == 200 and isinstance(resp.json(), list) and len(resp.json()) == 3
    total = int(resp.headers["X-Total-Count"])
    assert total >= 7 and "X-Total-Count-Capped" not in resp.headers
    links = _links(resp.headers["Link"])
    assert links["first"]["offset"] == ["0"] and links["first"]["limit"] == ["3"]
    assert links["prev"]["offset"] == ["0"]
    assert links["next"]["offset"] == ["6"]
    assert links["last"]["offset"] == [str(((total - 1) // 3) * 3)]
    # following "last" gives the final rows and no "next"
    last = client.get(
        "/api/properties", params={"limit": 3, "offset": links["last"]["offset"][0]},
        headers=viewer_headers,
    )
    assert 1 <= len(last.json()) <= 3 and "next" not in _links(last.headers["Link"])


def test_links_keep_the_filters(client, viewer_headers, db_session):
    for i in range(3):
        make_property(db_session, f"LF{i}")
    resp = client.get("/api/properties", params={"code": "LF1", "limit": 1},
                      headers=viewer_headers)
    links = _links(resp.headers["Link"])
    assert links["first"]["code"] == ["LF1"] and "next" not in links and "prev" not in links


def test_first_page_has_no_prev_and_empty_list_has_no_last(client, viewer_headers):
    resp = client.get("/api/properties?code=NOPE", headers=viewer_headers)
    assert resp.json() == [] and resp.headers["X-Total-Count"] == "0"
    assert set(_links(resp.headers["Link"])) == {"first"}


def test_every_list_route_follows_the_convention(app):
    """Every GET taking limit/offset answers an array and documents the paging headers."""
    spec = app.openapi()
    lists = 0
    for path, ops in spec["paths"].items():
        op = ops.get("get")
        if not op:
            continue
        params = {p["name"] for p in op.get("parameters", [])}
        if not {"limit", "offset"} <= params:
            continue
        lists += 1
        ok = op["responses"]["200"]
        schema = ok["content"]["application/json"]["schema"]
        assert schema.get("type") == "array", path
        assert {"X-Total-Count", "X-Total-Count-Capped", "Link"} <= set(ok["headers"]), path
    assert lists >= 15


def _snake_properties(node, where: str, found: list[str]) -> None:  # type: ignore[no-untyped-def]
    if isinstance(node, dict):
        for name in (node.get("properties") or {}):
            if "_" in name:
                found.append(f"{where}.{name}")
        for key, value in node.items():
            _snake_properties(value, f"{where}/{key}", found)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _snake_properties(value, f"{where}[{i}]", found)


def test_no_snake_case_property_in_the_openapi(app):
    """One casing at the API: every property name of every schema (nested ones included)
    is camelCase."""
    found: list[str] = []
    _snake_properties(app.openapi(), "", found)
    assert found == []


def test_nested_free_form_keys_are_camel_case(client, viewer_headers, admin_headers, db_session):
    """Keys inside free-form objects (sync-log details, audit snapshots) are camelCase too."""
    from db.models import ChannelSyncLog

    db_session.add(ChannelSyncLog(operation="webhook_booking", status="success",
                                  details={"webhook_event_id": 7,
                                           "per_room": [{"room_type_id": 1}]}))
    db_session.flush()
    [log] = client.get("/api/channel-sync-logs?operation=webhook_booking",
                       headers=viewer_headers).json()
    assert log["details"] == {"webhookEventId": 7, "perRoom": [{"roomTypeId": 1}]}
    make_property(db_session, "CAML")
    client.post("/api/properties", headers=admin_headers, json={"code": "CAM2", "name": "n"})
    [entry] = client.get("/api/audit-logs?entityType=property&action=create",
                         headers=admin_headers).json()
    assert "createdAt" in entry["after"] and "created_at" not in entry["after"]
