"""Backup deployments: a nightly backup + retention, and on-demand backup flows.

Serve them with `python -m deployments.backup` (needs a Prefect server: PREFECT_API_URL).
"""

from __future__ import annotations

from typing import Any

from prefect import serve

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
    """The backup deployments (nightly + on-demand), built from the one list in specs.py."""
    from deployments.specs import deployment_specs

    out = []
    for spec in deployment_specs():
        if spec.module == "flows.backup" and (flow := spec.load_flow()) is not None:
            out.append(spec.to_deployment(flow))
    return out


if __name__ == "__main__":
    serve(*deployments())
