"""API keys scoped to properties: what a scoped key may touch.

A key with a property scope gets 403 for anything outside its properties: every path
parameter naming a row (property, room type, rate plan, room, reservation, channel,
channel booking, guest) is checked in the principal dependency (api/deps.py), lists are
filtered with `scoped()`, bodies naming a property are checked by their routes, and the
routes that span every property (API keys, backups, audit log, the sync queue) refuse
scoped keys. Unscoped keys behave as before.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from api.auth import Principal
from db.repositories.scopes import guest_in_properties, property_of

#: Path prefixes (under /api) of routes that span every property: unscoped keys only.
GLOBAL_PREFIXES = ("/api/api-keys", "/api/backup", "/api/audit-logs", "/api/sync/",
                   "/api/reports")

_PATH_PARAMS = ("property_id", "room_type_id", "rate_plan_id", "room_id", "reservation_id",
                "channel_id", "booking_id")


def check_request(session: Session, principal: Principal, request: Request) -> None:
    """403 when a scoped key's request names something outside its properties (a row
    that does not exist is left to the route's 404)."""
    if not principal.scoped:
        return
    path = request.url.path
    if path.startswith(GLOBAL_PREFIXES):
        principal.require_unscoped(path)
    params = request.path_params
    for name in _PATH_PARAMS:
        if name in params:
            found, property_id = property_of(session, name, int(params[name]))
            if found:
                principal.require_property(property_id, f"{name.removesuffix('_id').replace('_', ' ')} {params[name]}")
    if "guest_id" in params:
        assert principal.property_ids is not None
        if not guest_in_properties(session, int(params["guest_id"]), sorted(principal.property_ids)):
            principal.require_property(None, f"guest {params['guest_id']}")


def scoped(stmt: Any, column: Any, principal: Principal, requested: int | None = None) -> Any:
    """A list's statement kept to the requested property (403 outside the key's scope) and
    to the key's properties."""
    ids = principal.property_filter(requested)
    return stmt if ids is None else stmt.where(column.in_(ids))
