"""Serve innsync's background tasks (flows/background.py) until stopped.

`innsync up` runs this beside `deployments.serve`; on other installs run
`python -m deployments.task_worker` on any machine that reaches the database, the partners and
the Prefect server, as many as wanted (each task run goes to one of them). It needs
PREFECT_API_URL, and the same result storage as the API that delays the tasks
(PREFECT_LOCAL_STORAGE_PATH, or a shared `PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK`), where
Prefect keeps a delayed task's parameters.
"""

from __future__ import annotations

import logging

#: Fetches run at once in parallel, each in its own thread of the worker.
CONCURRENT_TASKS = 8


def main() -> None:
    from prefect.task_worker import serve

    from flows.background import BACKGROUND_TASKS

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(*BACKGROUND_TASKS, limit=CONCURRENT_TASKS)


if __name__ == "__main__":
    main()
