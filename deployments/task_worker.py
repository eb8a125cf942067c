"""Serve innsync's background tasks (flows/background.py) until stopped.

    python -m deployments.task_worker [--tasks webhooks|pulls|all] [--limit N]

`innsync up` runs one for webhook fetches (`--tasks webhooks`) and `--workers` of them for the
booking cycle's batches (`--tasks pulls`) beside `deployments.serve`; on other installs run
them on any machine that reaches the database, the partners and the Prefect server, as many
as wanted (each task run goes to one of them). It needs
PREFECT_API_URL, and the same result storage as the API that delays the tasks
(PREFECT_LOCAL_STORAGE_PATH, or a shared `PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK`), where
Prefect keeps a delayed task's parameters.
"""

from __future__ import annotations

import argparse
import logging

#: Tasks run at once in parallel, each in its own thread of the worker (a pull batch pulls
#: INNSYNC_PULL_BATCH_PARALLEL channels at once inside its thread).
CONCURRENT_TASKS = {"webhooks": 8, "pulls": 4, "all": 8}


def main(argv: list[str] | None = None) -> None:
    from prefect.task_worker import serve

    from flows.background import TASK_KINDS

    parser = argparse.ArgumentParser(description="serve innsync's background tasks")
    parser.add_argument("--tasks", choices=sorted(TASK_KINDS), default="all")
    parser.add_argument("--limit", type=int, default=None, help="tasks at once")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(*TASK_KINDS[args.tasks], limit=args.limit or CONCURRENT_TASKS[args.tasks])


if __name__ == "__main__":
    main()
