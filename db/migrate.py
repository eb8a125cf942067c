"""Alembic, driven from code: `innsync db upgrade|downgrade|current` and the tests use this."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    if url is not None:
        # ConfigParser interpolation: escape % in passwords.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _url(url: str | None) -> str:
    if url is not None:
        return url
    from db.engine import database_url

    return database_url()


def upgrade(revision: str = "head", url: str | None = None) -> None:
    command.upgrade(alembic_config(_url(url)), revision)


def downgrade(revision: str, url: str | None = None) -> None:
    command.downgrade(alembic_config(_url(url)), revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(url: str | None = None) -> str | None:
    engine = create_engine(_url(url))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def is_known_revision(revision: str) -> bool:
    """True when this code base knows `revision` (a backup from a newer schema is unknown)."""
    script = ScriptDirectory.from_config(alembic_config())
    try:
        return script.get_revision(revision) is not None
    except Exception:
        return False
