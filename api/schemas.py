"""Shared API schema pieces: camelCase models, the error body (paging: api/paging.py)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer, model_validator
from pydantic.alias_generators import to_camel


def camel_keys(value: Any) -> Any:
    """A JSON-like value with every dict key camelCase (nested ones too): free-form
    objects the API answers (sync-log details, audit snapshots) use the API's one casing."""
    if isinstance(value, dict):
        return {to_camel(k) if isinstance(k, str) else k: camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel_keys(v) for v in value]
    return value


#: A free-form object answered with camelCase keys at every depth.
CamelDict = Annotated[dict[str, Any], PlainSerializer(camel_keys, return_type=dict[str, Any])]


class APIModel(BaseModel):
    """Every API body is camelCase on the wire and accepts snake_case too."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, from_attributes=True
    )


class APIInput(APIModel):
    """Request bodies reject unknown fields, so a typo is a 422, not a silent no-op."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # One check for every text in a body, nested JSON (a queue item's `data`) and keys
        # included: PostgreSQL text and JSONB cannot hold NUL.
        if contains_nul(data):
            raise ValueError("text must not contain NUL (\\u0000) characters")
        return data


def contains_nul(value: Any) -> bool:
    """True if any string in a JSON-like value (keys included) holds a NUL character."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    """The one error body of every 4xx/5xx answer."""

    error: ErrorDetail


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


#: The error statuses every route under /api may answer (shared by the routers): the edge
#: (413 body too large, 422 validation and NUL), authentication (401/403), lookups (404),
#: conflicts (409), and the generic 500 (which also says Connection: close).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("bad request (malformed body or path)"),
    401: _error("missing, invalid or revoked API key"),
    403: _error("the API key's role is not enough"),
    404: _error("not found"),
    405: _error("method not allowed"),
    409: _error("conflict with the current state"),
    413: _error("request body too large"),
    422: _error("validation error"),
    500: _error("internal error"),
    503: _error("a service this needs is unavailable"),
}
