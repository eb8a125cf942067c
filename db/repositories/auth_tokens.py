"""Partner auth tokens (`partner_auth_tokens`): one row per partner account, shared by every
process and flow run, so N workers and M runs an hour make one token exchange per lifetime.

The token is encrypted under app_key() like channel configs; `fingerprint` is an HMAC (under
the app key) of the credentials' hash, so a token issued to other credentials is never used
and the column is no offline guessing oracle for the secret. Refreshes happen inside one
transaction holding `pg_advisory_xact_lock(TOKEN_LOCK_NAMESPACE, <account hash>)`: commit or
rollback releases it.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from channels.tokens import StoredToken
from innsync.crypto import DecryptionError, app_key, decrypt_json, encrypt_json

#: pg_advisory_xact_lock(namespace, key): bookings use 7_311 (db/repositories/bookings.py).
TOKEN_LOCK_NAMESPACE = 7_312


class TokenLockTimeoutError(TimeoutError):
    """Another process held the account's refresh lock longer than we were willing to wait."""


class TokenExchangeStats(BaseModel):
    """Token exchanges per partner account (for health checks and the soak benchmark)."""

    channel_name: str
    account_key: str
    exchange_count: int
    refreshed_at: datetime | None
    expires_at: datetime | None
    retry_not_before: datetime | None


def lock_key(channel_name: str, account_key: str) -> int:
    """The account's advisory-lock key (a signed 32-bit int, second half of the lock id)."""
    digest = hashlib.sha256(f"{channel_name}|{account_key}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def _seal_fingerprint(fingerprint: str) -> str:
    return hmac.new(app_key(), fingerprint.encode(), hashlib.sha256).hexdigest()


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


_SELECT = (
    "SELECT fingerprint, token_encrypted, expires_at, refreshed_at, retry_not_before, "
    "exchange_count FROM partner_auth_tokens WHERE channel_name = :p AND account_key = :a"
)


def read_token(session: Session, channel_name: str, account_key: str, fingerprint: str) -> StoredToken | None:
    """The account's stored token (value None when unset, of other credentials or unreadable),
    or None without a row."""
    row = session.execute(text(_SELECT), {"p": channel_name, "a": account_key}).first()
    if row is None:
        return None
    value: str | None = None
    if row.token_encrypted and row.fingerprint == _seal_fingerprint(fingerprint):
        try:
            value = str(decrypt_json(app_key(), row.token_encrypted)["token"])
        except (DecryptionError, KeyError, ValueError):
            value = None  # another key (restored backup): exchange a new one
    return StoredToken(
        value=value,
        expires_at=_ts(row.expires_at) if value else None,
        refreshed_at=_ts(row.refreshed_at),
        retry_not_before=_ts(row.retry_not_before),
        exchange_count=row.exchange_count,
    )


def lock_account(session: Session, channel_name: str, account_key: str, *, wait_seconds: float) -> None:
    """Take the account's refresh lock for the session's transaction, waiting at most
    `wait_seconds` (TokenLockTimeoutError beyond; the transaction is rolled back then)."""
    session.execute(
        text("SELECT set_config('lock_timeout', :t, true)"), {"t": f"{int(wait_seconds * 1000)}ms"}
    )
    try:
        session.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :k)"),
            {"ns": TOKEN_LOCK_NAMESPACE, "k": lock_key(channel_name, account_key)},
        )
    except OperationalError as exc:
        session.rollback()
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            raise TokenLockTimeoutError(
                f"{channel_name}: token refresh lock busy for {wait_seconds:.0f}s"
            ) from None
        raise


def _upsert(session: Session, channel_name: str, account_key: str, sets: str, params: dict[str, object]) -> None:
    session.execute(
        text(
            "INSERT INTO partner_auth_tokens (channel_name, account_key) VALUES (:p, :a) "
            "ON CONFLICT (channel_name, account_key) DO NOTHING"
        ),
        {"p": channel_name, "a": account_key},
    )
    session.execute(
        text(
            f"UPDATE partner_auth_tokens SET {sets}, updated_at = now() "
            "WHERE channel_name = :p AND account_key = :a"
        ),
        {"p": channel_name, "a": account_key, **params},
    )


def save_token(
    session: Session, channel_name: str, account_key: str, fingerprint: str, value: str, expires_at: float
) -> None:
    """Store a freshly exchanged token (encrypted), count the exchange, clear retry_not_before."""
    _upsert(
        session,
        channel_name,
        account_key,
        "fingerprint = :f, token_encrypted = :t, expires_at = :e, refreshed_at = now(), "
        "retry_not_before = NULL, exchange_count = exchange_count + 1",
        {"f": _seal_fingerprint(fingerprint), "t": encrypt_json(app_key(), {"token": value}),
         "e": _dt(expires_at)},
    )


def invalidate_token(session: Session, channel_name: str, account_key: str) -> None:
    """Forget the account's token (the partner refused it)."""
    _upsert(session, channel_name, account_key, "token_encrypted = NULL, expires_at = NULL", {})


def defer_exchanges(session: Session, channel_name: str, account_key: str, not_before: float) -> None:
    """Record the partner's Retry-After on its token endpoint."""
    _upsert(session, channel_name, account_key, "retry_not_before = :r", {"r": _dt(not_before)})


def exchange_stats(session: Session, channel_name: str | None = None) -> list[TokenExchangeStats]:
    """Exchange counts and times per account (no token, no fingerprint)."""
    rows = session.execute(
        text(
            "SELECT channel_name, account_key, exchange_count, refreshed_at, expires_at, "
            "retry_not_before FROM partner_auth_tokens "
            "WHERE CAST(:p AS text) IS NULL OR channel_name = :p ORDER BY channel_name, account_key"
        ),
        {"p": channel_name},
    ).all()
    return [TokenExchangeStats.model_validate(r._asdict()) for r in rows]
