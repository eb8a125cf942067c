"""Liveness and database readiness (no auth)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import SessionDep
from api.schemas import APIModel

router = APIRouter(tags=["health"])


class Health(APIModel):
    status: str
    database: str
    version: str


@router.get("/health", response_model=Health)
def health(session: SessionDep) -> Health:
    from innsync import __version__

    session.execute(text("SELECT 1"))
    return Health(status="ok", database="ok", version=__version__)
