"""`innsync queue status|process|retry`: the data-sync queue from the command line."""

from __future__ import annotations

import typer
from rich.console import Console

queue_app = typer.Typer(no_args_is_help=True, help="Data-sync queue: status, process, retry.")
console = Console(stderr=True)


@queue_app.command("status")
def status() -> None:
    """Pending and dead-lettered counts, and whether a worker is processing."""
    from db.engine import session_scope
    from db.repositories.queue import queue_status

    with session_scope() as session:
        counts = queue_status(session)
    typer.echo(f"pending\t{counts['pending']}\nfailed\t{counts['failed']}\n"
               f"processing\t{'yes' if counts['processing'] else 'no'}")


@queue_app.command("process")
def process(
    batch_size: int = typer.Option(100, "--batch-size", min=1, max=1000),
    max_batches: int = typer.Option(50, "--max-batches", min=1),
) -> None:
    """Drain due items now (one process-queue flow run)."""
    from flows.queue import process_queue
    from flows.runner import run_flow
    from tasks.results import QueueOutcome

    outcome = run_flow(process_queue, batch_size=batch_size, max_batches=max_batches)
    if not outcome.ok:
        console.print(f"[red]processing failed:[/] {outcome.error}")
        raise typer.Exit(1)
    r = outcome.value_as(QueueOutcome)
    console.print(f"[dim]flow run {outcome.flow_run_id}[/]")
    typer.echo(f"processed {r.processed}: {r.completed} completed, "
               f"{r.not_applicable} not applicable, {r.retrying} retrying, "
               f"{r.failed} dead-lettered")


@queue_app.command("retry")
def retry(
    item_id: int = typer.Option(None, "--id", help="re-queue this failed item"),
    all_failed: bool = typer.Option(False, "--all-failed", help="re-queue every failed item"),
) -> None:
    """Re-queue dead-lettered items (attempts reset): one with --id, or --all-failed."""
    from db.engine import session_scope
    from db.repositories.queue import requeue_failed

    if (item_id is None) == (not all_failed):
        console.print("[red]give exactly one of --id N or --all-failed[/]")
        raise typer.Exit(2)
    with session_scope() as session:
        count = requeue_failed(session, None if all_failed else [item_id])
    if item_id is not None and count == 0:
        console.print(f"[red]item {item_id} is not a failed queue item[/]")
        raise typer.Exit(1)
    typer.echo(f"re-queued {count}")
