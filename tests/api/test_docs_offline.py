"""/docs and /redoc render without internet: every asset they load is served by innsync."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from api.app import create_app


def _asset_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(
        r"""url: ?["']([^"']+)["']""", html)


def test_docs_pages_load_only_local_assets():
    client = TestClient(create_app())
    for page, needed in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        answer = client.get(page)
        assert answer.status_code == 200, page
        assert "cdn." not in answer.text and "googleapis" not in answer.text, page
        urls = _asset_urls(answer.text)
        assert any(u.endswith(needed) for u in urls), (page, urls)
        for url in urls:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            fetched = client.get(url)
            assert fetched.status_code == 200 and len(fetched.content) > 0, url


def test_openapi_the_docs_point_at_is_served():
    answer = TestClient(create_app()).get("/openapi.json")
    assert answer.status_code == 200 and answer.json()["info"]["title"] == "innsync"
