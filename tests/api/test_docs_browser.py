"""/docs and /redoc render in a real browser with no internet: every asset is served by the
API itself (Swagger UI and ReDoc used to load from a CDN and showed a blank page offline).

Needs Chromium (`make browser` installs Debian's package); without it this test is skipped
with that instruction."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from channels.simulators.server import running_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed: `make browser` installs it")

#: Every host name but 127.0.0.1 resolves to nothing: a page that needs a CDN stays blank.
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]


def chromium(*args: str, timeout: float = 90) -> str:
    out = subprocess.run(
        [str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu",
         "--disable-dev-shm-usage", "--disable-background-networking", "--no-first-run",
         "--disable-extensions", "--virtual-time-budget=15000", *OFFLINE, *args],
        capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.parametrize(("path", "rendered"), [
    ("/docs", ['class="opblock', "/api/health", "sync-bookings"]),
    ("/redoc", ["react-tabs__tab-list", "redoc-json", "sync-bookings"]),
])
def test_the_api_docs_render_offline(app, path, rendered, tmp_path: Path) -> None:
    with running_server(app) as url:
        dom = chromium("--dump-dom", f"{url}{path}")
        shot = tmp_path / "page.png"
        chromium(f"--screenshot={shot}", "--window-size=1280,2000", f"{url}{path}")
    for marker in rendered:  # built by the page's JavaScript from the API's own OpenAPI
        assert marker in dom, f"{path}: {marker!r} not in the rendered page"
    # A rendered page is a picture with text in it; a blank one compresses to almost nothing.
    assert shot.stat().st_size > 30_000, shot.stat().st_size
    keep = Path("/tmp") / f"innsync-docs{path.replace('/', '-')}.png"
    shutil.copyfile(shot, keep)  # left for a person to look at
