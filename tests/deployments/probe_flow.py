"""A tiny flow for deployment tests: cheap to import in a flow-run subprocess."""

from __future__ import annotations

from prefect import flow


@flow(name="innsync-probe")
def probe(x: int = 1) -> int:
    """Double x (a result to read back)."""
    return 2 * x
