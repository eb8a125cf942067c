"""Test fixtures: a real PostgreSQL database built by Alembic once per session.

Server choice: INNSYNC_TEST_DATABASE_URL, else the local server at 127.0.0.1:5432, else the
embedded cluster (pip wheel). INNSYNC_TEST_IGNORE_LOCAL_SERVER=1 skips the local server (the
embedded one is used, as on a machine without PostgreSQL); INNSYNC_TEST_NO_EMBEDDED=1 forbids
the embedded fallback. Each session works in its own fresh database, so parallel runs never
collide. With INNSYNC_REQUIRE_POSTGRES=1 (set by .ci/run) an unreachable server or any
skipped database test fails the run instead of skipping. The server used is printed at the
end of the run.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The settings are read once per process: point them at the test world before any import.
_HOME = Path(tempfile.mkdtemp(prefix="innsync-test-home-"))
os.environ["INNSYNC_HOME"] = str(_HOME)
os.environ["INNSYNC_SECRET_KEY"] = "test-secret-key-" + secrets.token_hex(8)
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Partner fault tests: shorter timeouts and retry delays, same code paths (the timeout stays
# above the simulators' 3 s "timeout" fault and a busy machine's slow answers).
os.environ.setdefault("INNSYNC_PARTNER_TIMEOUT", "5.0")
os.environ.setdefault("INNSYNC_RETRY_BACKOFF_SECONDS", "0.05")

import psycopg  # noqa: E402
import pytest  # noqa: E402
from sqlalchemy import Engine  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

REQUIRE_POSTGRES = os.environ.get("INNSYNC_REQUIRE_POSTGRES") == "1"
IGNORE_LOCAL_SERVER = os.environ.get("INNSYNC_TEST_IGNORE_LOCAL_SERVER") == "1"
LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _admin_url() -> tuple[str, str]:
    """(libpq URL of a maintenance database, which server) for creating test databases."""
    explicit = os.environ.get("INNSYNC_TEST_DATABASE_URL")
    if explicit:
        return explicit, "configured"
    if IGNORE_LOCAL_SERVER:
        if os.environ.get("INNSYNC_TEST_NO_EMBEDDED") == "1":
            raise RuntimeError("INNSYNC_TEST_IGNORE_LOCAL_SERVER and INNSYNC_TEST_NO_EMBEDDED "
                               "leave no server to use")
    elif _reachable(LOCAL_SERVER):
        return LOCAL_SERVER, "local"
    elif os.environ.get("INNSYNC_TEST_NO_EMBEDDED") == "1":
        raise RuntimeError("no PostgreSQL at 127.0.0.1:5432 and the embedded fallback is off")
    from db.embedded import embedded_database_url

    pgdata = Path(tempfile.gettempdir()) / "innsync-test-pgdata"
    return embedded_database_url("postgres", pgdata), "embedded"


def _with_db(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[tuple[str, str]]:
    """The maintenance URL of the PostgreSQL server the tests use, and its kind."""
    try:
        admin, kind = _admin_url()
        with psycopg.connect(admin) as conn:
            version = conn.info.parameter_status("server_version")
    except Exception as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required but unreachable: {exc}", pytrace=False)
        pytest.skip(f"postgres: no PostgreSQL available ({exc})")
    _server_used.append(f"{kind} server, PostgreSQL {version}")
    yield admin, kind


def create_scratch_database(admin_url: str, prefix: str = "innsync_test") -> str:
    """Create an empty database; returns its libpq URL."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return _with_db(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(pg_server: tuple[str, str]) -> Iterator[str]:
    """A fresh database migrated to head with Alembic (SQLAlchemy URL, psycopg driver)."""
    from db import migrate
    from db.engine import to_sqlalchemy_url

    admin, _ = pg_server
    libpq_url = create_scratch_database(admin)
    url = to_sqlalchemy_url(libpq_url)
    os.environ["INNSYNC_DATABASE_URL"] = url
    from innsync.settings import get_settings

    get_settings.cache_clear()
    migrate.upgrade("head", url)
    yield url
    from db.engine import get_engine

    get_engine.cache_clear()
    drop_database(admin, libpq_url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    from db.engine import get_engine

    eng = get_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def db_session(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test.

    Code under test may commit: with create_savepoint its commits release savepoints.
    """
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint",
                      expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def app(db_session: Session):  # type: ignore[no-untyped-def]
    """The API app with its session bound to the test transaction."""
    from api.app import create_app
    from api.deps import get_session

    application = create_app()

    def _session() -> Iterator[Session]:
        yield db_session
        db_session.flush()

    application.dependency_overrides[get_session] = _session
    return application


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def make_key(db_session: Session):  # type: ignore[no-untyped-def]
    """make_key(role) -> headers carrying a new API key of that role."""
    from api.auth import create_api_key

    def _make(role: str = "admin", name: str | None = None) -> dict[str, str]:
        _, plaintext = create_api_key(db_session, name or f"test-{role}", role)
        db_session.flush()
        return {"X-API-Key": plaintext}

    return _make


@pytest.fixture
def admin_headers(make_key) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return make_key("admin")


@pytest.fixture
def operator_headers(make_key) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return make_key("operator")


@pytest.fixture
def viewer_headers(make_key) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return make_key("viewer")


# ---------------------------------------------------------------- no silent skips in CI

_skipped_db_tests: list[str] = []
_server_used: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "postgres" in str(report.longrepr).lower():
        _skipped_db_tests.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _server_used:
        terminalreporter.write_line(f"PostgreSQL used by this run: {_server_used[0]}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if REQUIRE_POSTGRES and _skipped_db_tests:
        print(f"\nFAIL: {len(_skipped_db_tests)} PostgreSQL test(s) were skipped:")
        for nodeid in _skipped_db_tests[:20]:
            print("  ", nodeid)
        session.exitstatus = 1


# ---------------------------------------------------------------- Prefect


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A real Prefect server (subprocess, ~10 s) for tests that run flows."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield
