"""Backup deployments: a nightly backup + retention, and on-demand backup flows.

Serve them with `python -m deployments.backup` (needs a Prefect server: PREFECT_API_URL).
"""

from __future__ import annotations

from typing import Any

from prefect import serve
from prefect.schedules import Cron

from flows.backup import (
    create_backup,
    delete_backup,
    nightly_backup,
    prune_backups,
    restore_backup,
    verify_backup,
)

NIGHTLY_CRON = "0 2 * * *"
NIGHTLY_TIMEZONE = "UTC"
#: Parameters of the nightly run (JSON-able, as in prefect.yaml).
NIGHTLY_PARAMETERS: dict[str, Any] = {
    "created_by": "nightly",
    "options": {"include_audit_logs": True, "include_system_settings": True, "compress": True,
                "location": "nightly"},
    "policy": {"keep_last": 7, "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 6},
}


def deployments() -> list[Any]:
    """The runner deployments: the scheduled nightly job plus on-demand flows."""
    nightly = nightly_backup.to_deployment(
        name="nightly", schedule=Cron(NIGHTLY_CRON, timezone=NIGHTLY_TIMEZONE),
        parameters=NIGHTLY_PARAMETERS, concurrency_limit=1, tags=["backup"],
    )
    on_demand = [
        f.to_deployment(name="on-demand", tags=["backup"], concurrency_limit=1)
        for f in (create_backup, restore_backup, verify_backup, delete_backup, prune_backups)
    ]
    return [nightly, *on_demand]


if __name__ == "__main__":
    serve(*deployments())
