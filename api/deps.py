"""FastAPI dependencies as `Annotated` aliases, so tests swap them via dependency_overrides."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.auth import Principal, lookup_key
from api.errors import Forbidden, Unauthorized
from db.engine import session_scope
from innsync.settings import Settings, get_settings


def get_session() -> Iterator[Session]:
    """One session per request: commit on success, roll back on any error."""
    with session_scope() as session:
        yield session


#: `scope="function"`: the session's teardown (the commit) runs when the route function
#: returns, before the answer is built and sent. With the default request scope it ran after
#: the answer was sent, so a client could read the old state right after a 201/200 (a
#: revoked key still accepted, a created row not found). A commit that fails is then an
#: error answer, not a success followed by a lost write.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")


def get_principal(
    request: Request,
    session: SessionDep,
    api_key: Annotated[str | None, Security(_api_key_header)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> Principal:
    presented = api_key or (bearer.credentials if bearer else None)
    if not presented:
        raise Unauthorized("missing API key (send X-API-Key or Authorization: Bearer)")
    principal = lookup_key(session, presented)
    if principal is None:
        raise Unauthorized("invalid or revoked API key")
    request.state.principal = principal
    from api.scopes import check_request

    check_request(session, principal, request)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_role(minimum: str):  # type: ignore[no-untyped-def]
    def _check(principal: PrincipalDep) -> Principal:
        if not principal.has_role(minimum):
            raise Forbidden(f"this needs the {minimum} role; your key has {principal.role}")
        return principal

    return _check


ViewerDep = Annotated[Principal, Depends(require_role("viewer"))]
OperatorDep = Annotated[Principal, Depends(require_role("operator"))]
AdminDep = Annotated[Principal, Depends(require_role("admin"))]
