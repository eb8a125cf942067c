"""Serve every deployment from one process (single-machine installs; `innsync up` runs this).

`python -m deployments.serve` needs a Prefect server (PREFECT_API_URL). Schedules and limits
come from deployments/specs.py, the same list prefect.yaml is checked against.
"""

from __future__ import annotations

import logging
from typing import Any

from deployments.specs import DeploymentSpec, deployment_specs

log = logging.getLogger(__name__)


def runner_deployments(specs: list[DeploymentSpec] | None = None) -> list[Any]:
    """RunnerDeployments of every spec whose flow exists (missing modules are skipped)."""
    out = []
    for spec in specs or deployment_specs():
        flow = spec.load_flow()
        if flow is None:
            log.warning("skipping %s/%s: %s does not exist yet", spec.module, spec.name,
                        spec.entrypoint)
            continue
        out.append(spec.to_deployment(flow))
    return out


def main() -> None:
    """Upsert the partner rate limits, then serve every deployment until stopped."""
    from prefect import serve

    from deployments.limits import ensure_limits

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    names = ensure_limits()
    log.info("rate limits ready: %s", ", ".join(names))
    deployments = runner_deployments()
    serve(*deployments, print_starting_message=False)


if __name__ == "__main__":
    main()
