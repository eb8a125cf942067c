"""The FastAPI application: every route under /api, OpenAPI at /docs."""

from __future__ import annotations

import importlib
import logging

from fastapi import APIRouter, FastAPI

from api.docs import install_offline_docs
from api.errors import install_error_handlers
from api.middleware import install_edge
from api.schemas import ERROR_RESPONSES

log = logging.getLogger("innsync.api")

#: Router modules mounted under /api, in documentation order. A module missing here
#: (a feature not built yet) is a startup error, not a silent gap.
ROUTER_MODULES = [
    "api.routers.health",
    "api.routers.apikeys",
    "api.routers.properties",
    "api.routers.room_types",
    "api.routers.rooms",
    "api.routers.rate_plans",
    "api.routers.inventory",
    "api.routers.rates",
    "api.routers.guests",
    "api.routers.reservations",
    "api.routers.channels",
    "api.routers.channel_sync",
    "api.routers.sync_logs",
    "api.routers.flow_runs",
    "api.routers.channel_bookings",
    "api.routers.webhooks",
    "api.routers.mappings",
    "api.routers.audit_logs",
    "api.routers.backup",
    "api.routers.sync_queue",
    "api.routers.reports",
    "api.routers.partner_accounts",
]


def create_app() -> FastAPI:
    from innsync import __version__

    app = FastAPI(
        title="innsync",
        version=__version__,
        description=(
            "Channel manager and backups for a hotel PMS. Every endpoint except "
            "`/api/health` needs an API key in `X-API-Key` (or `Authorization: Bearer`). "
            "Roles: viewer (read), operator (trigger syncs), admin (backups, restore, "
            "delete, keys). Errors: `{\"error\": {\"code\", \"message\", \"details\"}}`."
        ),
        docs_url=None,  # served from package assets instead of a CDN: api/docs.py
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    install_offline_docs(app)
    install_error_handlers(app)
    install_edge(app)
    api = APIRouter(prefix="/api", responses=ERROR_RESPONSES)
    for name in ROUTER_MODULES:
        api.include_router(importlib.import_module(name).router)
    app.include_router(api)
    return app
