"""One settings object for the whole service (env prefix `INNSYNC_`)."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, TypeAdapter, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"changeme", "change-me", "changethis", "secret", "placeholder", "xxx", ""}


#: Margin of a pull batch's time bound over one channel's (Settings.batch_run_timeout_seconds).
BATCH_TIMEOUT_MARGIN = 60

class Settings(BaseSettings):
    """Configuration read from the environment (and `.env`)."""

    model_config = SettingsConfigDict(env_prefix="INNSYNC_", env_file=".env", extra="ignore")

    home: Path = Field(default_factory=lambda: Path("~/.innsync").expanduser())
    database_url: SecretStr | None = None
    secret_key: SecretStr | None = None
    backup_root: Path | None = None
    #: Extra remote backup locations allowed besides the backup root (fsspec URL prefixes).
    backup_remotes: list[str] = Field(default_factory=list)
    log_level: str = "INFO"
    #: Seconds between automatic queue-processing runs (the seed's auto-sync).
    auto_sync_interval: int = 30
    #: API work goes through Prefect deployments (needs PREFECT_API_URL); `innsync up` sets it.
    run_via_deployments: bool = False
    #: A task worker serves the background tasks (`python -m deployments.task_worker`;
    #: `innsync up` starts one and sets this): a webhook's booking fetch is handed to it at
    #: once instead of waiting for a deployment run (needs run_via_deployments too).
    background_tasks: bool = False
    #: Seconds between the serve process's polls for runs to start (`innsync up` passes it
    #: as PREFECT_RUNNER_POLL_FREQUENCY; Prefect's default, 10, delays every API-started run
    #: and every scheduled pull by up to that much).
    runner_poll_seconds: int = Field(default=2, ge=1, le=60)
    #: Partner HTTP timeout (seconds) and the first retry delay of partner tasks (doubles).
    partner_timeout: float = 20.0
    retry_backoff_seconds: float = 2.0
    #: Partner-task retries stop once this many seconds passed since the task's first try
    #: (besides the retry count): a partner that keeps failing ends the run, not stalls it.
    retry_budget_seconds: float = 120.0
    #: Time bound of one booking pull / webhook fetch / status push run: a hung partner
    #: ends as a TimedOut (failed) run with a `failed` sync log, never a Running one.
    sync_run_timeout_seconds: int = 300
    #: The scheduled pull runs enabled channels in batches (INNSYNC_PULL_BATCH_SIZE channels of
    #: one partner per flow run; each batch is one process on a worker) with at most
    #: INNSYNC_PULL_BATCH_PARALLEL channel pulls at once inside a batch.
    pull_batch_size: int = Field(default=250, ge=1, le=10_000)
    pull_batch_parallel: int = Field(default=16, ge=1, le=256)
    #: How long a sync call of the API waits for its run before answering 202 with the
    #: flow-run id (INNSYNC_API_WAIT_SECONDS; 0: never wait).
    api_wait_seconds: float = Field(default=60.0, ge=0, le=3600)
    #: Time bound of one ARI push run (a full year of every channel takes longer).
    ari_run_timeout_seconds: int = 3600
    #: Flow-run heartbeats (PREFECT_FLOWS_HEARTBEAT_FREQUENCY; Prefect's minimum is 30).
    heartbeat_seconds: int = Field(default=30, ge=30)
    #: A Running flow run with no heartbeat for this long is marked Crashed (automation).
    zombie_after_seconds: int = Field(default=90, ge=30)
    #: Seconds between maintenance runs (reaper + channel health events).
    maintenance_interval: int = 60
    #: A channel with no successful booking pull for this long is stale (health + alert).
    stale_after_minutes: int = Field(default=10, ge=1)
    #: A channel whose booking pulls failed this share of the time over the last hour has a
    #: high error rate (health + alert); Expedia asks partners to act at 10 %.
    error_rate_alert: float = Field(default=0.10, gt=0, le=1)
    #: Prefect notification block the stale-channel automation notifies, as
    #: "<block-type-slug>/<block-name>" (e.g. "slack-webhook/innsync-alerts"); unset: none.
    alert_block: str | None = None
    #: At most one stale alert per channel in this many minutes.
    alert_every_minutes: int = Field(default=60, ge=1)

    # Prefect's own variables that innsync reads (by their Prefect names, no prefix).
    #: An external Prefect server to use instead of starting one (`innsync up`).
    prefect_api_url: str | None = Field(default=None, validation_alias="PREFECT_API_URL")
    #: Where Prefect clients keep their results (default: $INNSYNC_HOME/prefect).
    prefect_home: Path | None = Field(default=None, validation_alias="PREFECT_HOME")
    #: The Prefect server's database (default: `prefect` in the embedded cluster).
    prefect_server_database_url: SecretStr | None = Field(
        default=None, validation_alias="PREFECT_SERVER_DATABASE_CONNECTION_URL"
    )
    #: An operator's choice of what the Prefect server vacuums, and after how long (seconds).
    prefect_vacuum_enabled: str | None = Field(
        default=None, validation_alias="PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED"
    )
    prefect_vacuum_retention: str | None = Field(
        default=None, validation_alias="PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD"
    )

    @property
    def batch_run_timeout_seconds(self) -> int:
        """Time bound of a pull batch: one channel's bound plus a margin (a channel's bound
        fires first)."""
        return self.sync_run_timeout_seconds + BATCH_TIMEOUT_MARGIN

    @property
    def run_retention(self) -> timedelta:
        """How long finished flow runs are kept: the Prefect server's vacuum deletes them, the
        maintenance flow their result files (an operator's PREFECT_SERVER_SERVICES_DB_VACUUM_
        RETENTION_PERIOD wins; default 7 days)."""
        if self.prefect_vacuum_retention:
            try:
                return TypeAdapter(timedelta).validate_python(self.prefect_vacuum_retention)
            except ValueError:
                pass
        return timedelta(days=7)

    @field_validator("home", "backup_root", "prefect_home", mode="before")
    @classmethod
    def _expand(cls, value: object) -> object:
        if isinstance(value, str) and value:
            return Path(value).expanduser()
        return value

    @field_validator("secret_key")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raw = value.get_secret_value().strip()
            if raw.lower() in PLACEHOLDER_SECRETS or len(raw) < 16:
                raise ValueError(
                    "INNSYNC_SECRET_KEY is a placeholder or too short (need >= 16 characters); "
                    "unset it to have one generated, or set a real random key"
                )
        return value

    @property
    def resolved_backup_root(self) -> Path:
        return (self.backup_root or self.home / "backups").resolve()

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def home_mode(self) -> int:
        """0700; 0711 as root with the embedded cluster in the home: its server then runs as
        the `embedded_postgres` user, which must traverse the home to reach pgdata (nothing
        in the home is readable by it or anyone else: files 0600, directories 0700).

        Whether the cluster is in the home is read off the disk, not off the database URL:
        `innsync up` hands its children the embedded cluster's URL, and one of them making the
        home 0700 crashed the server at its next checkpoint (the soak, at minute 10)."""
        if os.geteuid() == 0 and (self.database_url is None or self.pgdata.is_dir()):
            return 0o711
        return 0o700

    def secure_home(self) -> None:
        """Make an existing innsync home owner-only (`home_mode`; its keys 0600): homes made by
        older versions were 0755. Only a directory that is ours and holds innsync's own
        files is touched (never a shared directory someone pointed INNSYNC_HOME at)."""
        home = self.home
        markers = ("secret.key", "admin.key", "pgdata", "backups", "logs")
        try:
            if not home.is_dir() or home.stat().st_uid != os.getuid():
                return
            if not any((home / m).exists() for m in markers):
                return
            os.chmod(home, self.home_mode)
            for name in ("secret.key", "admin.key"):
                if (home / name).is_file():
                    os.chmod(home / name, 0o600)
        except OSError:
            return

    def ensure_secret_key(self) -> str:
        """The secret key: from the environment, else generated once into $INNSYNC_HOME (0600)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.home / "secret.key"
        if path.exists():
            return path.read_text().strip()
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.home, self.home_mode)  # the home holds keys and guest data: owner-only
        key = secrets.token_urlsafe(32)
        # O_EXCL: two processes racing to create it must agree on one key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
