"""Every API route needs a key: swept over the whole app, so a new route cannot forget it."""

from __future__ import annotations

import re
import warnings

from api.app import create_app

PUBLIC = {"/api/health"}
PARTNER_SIGNED = {"/api/webhooks/{channel_name}"}  # authenticated by partner signature


def _routes():
    # The OpenAPI document lists every mounted route, however routers are nested.
    for path, item in create_app().openapi()["paths"].items():
        for method in item:
            yield path, method.upper()


def test_every_route_refuses_a_missing_or_bad_key(client):
    checked = 0
    for path, method in _routes():
        if path in PUBLIC | PARTNER_SIGNED:
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        for headers in ({}, {"X-API-Key": "isk_not-a-key"}):
            resp = client.request(method, url, headers=headers, json={})
            assert resp.status_code == 401, f"{method} {path} answered {resp.status_code}"
            assert resp.json()["error"]["code"] == "unauthorized"
        checked += 1
    assert checked > 40


def test_webhooks_refuse_unsigned_pushes(client):
    for partner in ("agoda", "airbnb"):
        assert client.post(f"/api/webhooks/{partner}", json={}).status_code in (400, 401)


def test_openapi_document_is_valid_and_documents_auth():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        doc = create_app().openapi()
    schemes = doc["components"]["securitySchemes"]
    assert {"APIKeyHeader", "HTTPBearer"} <= set(schemes)
    op_ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(op_ids) == len(set(op_ids))
