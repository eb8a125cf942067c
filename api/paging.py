"""The one list convention of the API: a JSON array, paged by `limit`/`offset`, with the
total in `X-Total-Count` and RFC 8288 `Link` headers (first, prev, next, last).

Every list route takes `page: PageDep` and returns `page.answer(items, total)`; its
decorator spreads `**LIST_DOCS` so the OpenAPI documents the headers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from api.validators import INT8_MAX, BigNonNegative

T = TypeVar("T")
S = TypeVar("S", bound=BaseModel)

#: Lists whose filters match more rows than this count only up to it: `X-Total-Count` is
#: then a lower bound and `X-Total-Count-Capped: true` says so (an exact count of a
#: million-row log costs ~60 ms a page).
COUNT_CAP = 10_000

TOTAL_HEADER = "X-Total-Count"
CAPPED_HEADER = "X-Total-Count-Capped"


class PageParams:
    """The requested window plus what the answer needs to carry its headers."""

    def __init__(self, limit: int, offset: int, request: Request | None = None,
                 response: Response | None = None) -> None:
        self.limit = limit
        self.offset = offset
        self._request = request
        self._response = response

    def answer(self, items: list[T], total: int, capped: bool = False) -> list[T]:
        """The page as a list; sets X-Total-Count, X-Total-Count-Capped and Link."""
        if self._response is not None:
            headers = self._response.headers
            headers[TOTAL_HEADER] = str(total)
            if capped:
                headers[CAPPED_HEADER] = "true"
            link = self.link_header(total, capped)
            if link:
                headers["Link"] = link
        return items

    def link_header(self, total: int, capped: bool = False) -> str:
        """RFC 8288 links to the first, previous, next and (when the total is exact) last
        page, each the request's URL with only limit/offset changed."""
        if self._request is None:
            return ""
        links = [("first", 0)]
        if self.offset > 0:
            links.append(("prev", max(0, self.offset - self.limit)))
        if self.offset + self.limit < total:
            links.append(("next", self.offset + self.limit))
        if not capped and total > 0:
            links.append(("last", ((total - 1) // self.limit) * self.limit))
        url = self._request.url
        return ", ".join(
            f'<{url.include_query_params(limit=self.limit, offset=offset)}>; rel="{rel}"'
            for rel, offset in links
        )


def page_params(
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=500, description="page size")] = 50,
    offset: Annotated[BigNonNegative, Query(ge=0, le=INT8_MAX, description="rows to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset, request=request, response=response)


PageDep = Annotated[PageParams, Depends(page_params)]

#: OpenAPI of every list answer: the body is the array, the paging is in these headers.
PAGE_HEADERS: dict[str, Any] = {
    TOTAL_HEADER: {
        "description": "rows matching the filters (a lower bound when capped)",
        "schema": {"type": "integer"},
    },
    CAPPED_HEADER: {
        "description": f"`true` when counting stopped at {COUNT_CAP} rows",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Link": {
        "description": 'RFC 8288 links: rel="first", "prev", "next", "last" (same filters, '
        "other limit/offset)",
        "schema": {"type": "string"},
    },
}

#: Spread into a list route's decorator: `@router.get("", response_model=list[X], **LIST_DOCS)`.
LIST_DOCS: dict[str, Any] = {
    "responses": {
        200: {"description": "a JSON array (one page); paging in the headers",
              "headers": PAGE_HEADERS}
    }
}


def page_of(schema: type[S], rows: Sequence[Any], total: int, page: PageParams,
            capped: bool = False) -> list[S]:
    """A page of `schema` built from ORM rows, headers set."""
    return page.answer([schema.model_validate(r) for r in rows], total, capped)


def capped_count(session: Session, stmt: Select[Any]) -> tuple[int, bool]:
    """The number of rows `stmt` matches, counting at most COUNT_CAP + 1 of them."""
    counted = stmt.order_by(None).limit(COUNT_CAP + 1).subquery()
    total = session.scalar(select(func.count()).select_from(counted)) or 0
    return min(total, COUNT_CAP), total > COUNT_CAP
