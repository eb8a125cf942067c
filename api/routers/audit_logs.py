"""Audit log (admin): who changed what, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AdminDep, SessionDep
from api.paging import LIST_DOCS, PageDep, page_of
from api.schemas import APIModel, CamelDict
from api.validators import Moment
from db.repositories.audit import audit_logs_query
from db.repositories.base import paginate

router = APIRouter(prefix="/audit-logs", tags=["audit"])


class AuditLogOut(APIModel):
    id: int
    actor: str
    action: str
    entity_type: str
    entity_id: str | None
    before: CamelDict | None
    after: CamelDict | None
    at: datetime


@router.get("", response_model=list[AuditLogOut], **LIST_DOCS)
def list_audit_logs(
    session: SessionDep,
    _: AdminDep,
    page: PageDep,
    entity_type: Annotated[str | None, Query(alias="entityType")] = None,
    entity_id: Annotated[str | None, Query(alias="entityId")] = None,
    actor: Annotated[str | None, Query()] = None,
    action: Annotated[str | None, Query()] = None,
    since: Annotated[Moment | None, Query()] = None,
    until: Annotated[Moment | None, Query()] = None,
) -> list[AuditLogOut]:
    stmt = audit_logs_query(entity_type=entity_type, entity_id=entity_id, actor=actor,
                            action=action, since=since, until=until)
    rows, total = paginate(session, stmt, page.limit, page.offset)
    return page_of(AuditLogOut, rows, total, page)
