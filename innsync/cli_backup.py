"""`innsync backup ...`: create, list, restore, verify, delete, prune (each a flow run)."""

from __future__ import annotations

import json
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from tasks.results import (
    BackupCreated,
    DeleteOutcome,
    PruneOutcome,
    RestoreOutcome,
    Result,
    VerifyOutcome,
)

R = TypeVar("R", bound=Result)

backup_app = typer.Typer(no_args_is_help=True, help="Backups: create, list, restore, verify, "
                         "delete, prune.")
console = Console(stderr=True)


def _run(label: str, func: Any, kind: type[R], **params: Any) -> R:
    """Run a flow showing tables and rows done (the engine's per-table events); exit 1 with
    one line per error if it fails."""
    from db.backup import progress
    from flows.runner import run_flow

    rows_done = 0
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} tables"),
                  TextColumn("{task.fields[rows]} rows"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(label, total=None, rows="0")

        def on_event(event: progress.ProgressEvent) -> None:
            nonlocal rows_done
            if event.kind == "plan":
                bar.update(task, total=event.total)
            elif event.kind == "table":
                rows_done += event.rows
                bar.update(task, advance=1, rows=f"{rows_done:,}",
                           description=f"{label} ({event.table})")

        progress.set_listener(on_event)
        try:
            outcome = run_flow(func, **params)
        finally:
            progress.set_listener(None)
    if not outcome.ok:
        problems = getattr(outcome.error, "problems", None) or []
        _failed(label, outcome.error, [p.to_dict() for p in problems])
    console.print(f"[dim]flow run {outcome.flow_run_id}[/]")
    return outcome.value_as(kind)


def _on_stack(label: str, method: str, path: str, body: dict[str, Any] | None = None,
              params: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Run it on the running stack's API (see innsync/cli_remote.py): its answer, or None
    when nothing was done there (then it runs here); exit 1 when it failed there."""
    from innsync.cli_remote import NotOnStack, RemoteFailed, call, stack_api
    from innsync.settings import get_settings

    api = stack_api(get_settings().home)
    if api is None:
        return None
    try:
        with console.status(f"{label} on the running stack ({api.url})"):
            answer = call(api, method, path, body, params)
    except NotOnStack as exc:
        console.print(f"[yellow]{exc}: running here[/]", highlight=False, soft_wrap=True)
        return None
    except RemoteFailed as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        _failed(label, exc, details.get("problems") or [])
    console.print(f"[dim]flow run {answer.get('flowRunId')} (on the running stack)[/]")
    return answer


def _failed(label: str, error: BaseException | None, problems: list[dict[str, Any]]) -> NoReturn:
    """One line for the error, one per validation problem (db/backup/validate.Problem), exit 1."""
    from rich.markup import escape

    console.print(f"[red]{label} failed:[/] {escape(_one_line(error))}", highlight=False,
                  soft_wrap=True)
    for p in problems:
        rows = f" ({p['rows']} rows)" if p.get("rows") else ""
        console.print(f"  - {p.get('table')}.{p.get('column') or ''} [{p.get('check')}] "
                      f"{p.get('message')}{rows}", markup=False, highlight=False,
                      soft_wrap=True)  # "[not_null]" is text, not a style
    raise typer.Exit(1)


def _plain(secret: Any) -> str | None:
    """A prompted passphrase as the API takes it (JSON to the local stack), or None."""
    return secret.get_secret_value() if secret else None


def _one_line(error: BaseException | None) -> str:
    text = str(error or "").strip()
    return text.splitlines()[0] if text else type(error).__name__


def _fail(message: str) -> NoReturn:
    from rich.markup import escape

    console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _resolve(path_or_id: str) -> tuple[str, int | None]:
    """The backup's directory and record id, or one error line and exit 1 (fast: no flow)."""
    from db.backup.locate import resolve_backup

    try:
        ref = _ref(path_or_id)
        return resolve_backup(ref.get("file_path"), ref.get("backup_id"))
    except (LookupError, ValueError, PermissionError) as exc:
        _fail(_one_line(exc))
        raise  # unreachable: _fail exits


def _check_files(path: str, passphrase: Any) -> None:
    """Every checksum (and the decryption) before anything is asked or changed."""
    from db.backup.crypto import key_from_secret
    from db.backup.storage import Store
    from db.backup.verify import stage_backup
    from innsync.settings import get_settings

    try:
        staged = stage_backup(Store.open(path),
                              secret_key=key_from_secret(get_settings().ensure_secret_key()),
                              passphrase=passphrase.get_secret_value() if passphrase else None,
                              materialize=False)
    except Exception as exc:  # noqa: BLE001 - reported as one line; nothing was changed
        _fail(f"backup {path} does not verify: {_one_line(exc)}")
    else:
        staged.cleanup()


def _tables(tables: dict[str, int]) -> None:
    table = Table("table", "rows")
    for name, rows in sorted(tables.items()):
        table.add_row(name, f"{rows:,}")
    console.print(table)


def _ref(path_or_id: str) -> dict[str, Any]:
    return {"backup_id": int(path_or_id)} if path_or_id.isdigit() else {"file_path": path_or_id}


def _passphrase(ask: bool) -> Any:
    from pydantic import SecretStr

    return SecretStr(typer.prompt("passphrase", hide_input=True)) if ask else None


@backup_app.command("create")
def create(
    location: str = typer.Option(None, help="directory under the backup root, or s3://..."),
    created_by: str = typer.Option("cli", "--created-by"),
    tables: list[str] = typer.Option(None, "--table", help="only these tables (repeatable)"),
    no_audit_logs: bool = typer.Option(False, "--no-audit-logs"),
    no_system_settings: bool = typer.Option(False, "--no-system-settings"),
    no_compress: bool = typer.Option(False, "--no-compress"),
    encrypt: bool = typer.Option(False, "--encrypt", help="with the service secret key"),
    passphrase: bool = typer.Option(False, "--passphrase", help="prompt for a passphrase"),
    incremental: bool = typer.Option(False, "--incremental",
                                     help="only changes since the parent backup"),
    parent: int = typer.Option(None, "--parent",
                               help="parent backup id (default: newest completed here)"),
) -> None:
    """Back up the database; prints the backup's path last."""
    secret = _passphrase(passphrase)
    options = {"location": location, "tables": tables or None,
               "include_audit_logs": not no_audit_logs,
               "include_system_settings": not no_system_settings,
               "compress": not no_compress, "encrypt": encrypt, "incremental": incremental,
               "parent_id": parent}
    remote = _on_stack("backing up", "POST", "/backup/create", {
        "created_by": created_by, "options": {**options, "passphrase": _plain(secret)}})
    if remote is not None:
        result = BackupCreated(backup_id=remote["backupId"], file_path=remote["filePath"],
                               backup_type=remote["backupType"], size_bytes=remote["sizeBytes"],
                               rows=remote["rows"], tables=remote["tables"])
    else:
        from db.backup.create import BackupOptions
        from flows.backup import create_backup

        result = _run("backing up", create_backup, BackupCreated, created_by=created_by,
                      options=BackupOptions(**options, passphrase=secret))
    _tables(result.tables)
    kind = "incremental " if result.backup_type == "incremental" else ""
    console.print(f"{kind}backup {result.backup_id}: {result.rows:,} rows, "
                  f"{result.size_bytes:,} bytes")
    typer.echo(result.file_path)


@backup_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json"), limit: int = 50) -> None:
    """List backup records, newest first."""
    from db.backup import records
    from db.engine import session_scope

    with session_scope() as session:
        rows, _ = records.list_records(session, limit=limit)
        items: list[dict[str, Any]] = [{"id": r.id, "status": r.status, "type": r.backup_type,
                  "filePath": r.file_path, "sizeBytes": r.size_bytes,
                  "createdAt": r.created_at.isoformat(), "createdBy": r.created_by,
                  "parentId": r.parent_id, "error": r.error_message} for r in rows]
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    table = Table("id", "status", "type", "created", "size", "path")
    for it in items:
        table.add_row(str(it["id"]), it["status"], it["type"], it["createdAt"][:19],
                      f"{it['sizeBytes'] or 0:,}", it["filePath"] or "")
    Console().print(table)


@backup_app.command("restore")
def restore(
    path_or_id: str,
    skip_existing: bool = typer.Option(False, "--skip-existing"),
    validate_data: bool = typer.Option(False, "--validate-data"),
    passphrase: bool = typer.Option(False, "--passphrase"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Verify then restore a backup (path or id), all or nothing."""
    import getpass

    path, backup_id = _resolve(path_or_id)  # before any flow import: error paths stay fast
    secret = _passphrase(passphrase)
    if not (yes or skip_existing):
        _check_files(path, secret)
        if not typer.confirm(f"backup {backup_id if backup_id is not None else path} verifies;"
                             " replace the restored tables' contents?"):
            raise typer.Exit(1)
    options = {"skip_existing": skip_existing, "validate_data": validate_data}
    remote = _on_stack("restoring", "POST", "/backup/restore", {
        "file_path": path, "backup_id": backup_id, "options": options,
        "passphrase": _plain(secret)})
    if remote is not None:
        _tables(remote["tables"])
        return
    from db.backup.restore import RestoreOptions
    from flows.backup import restore_backup

    result = _run("restoring", restore_backup, RestoreOutcome, file_path=path,
                  backup_id=backup_id, options=RestoreOptions(**options),
                  passphrase=secret, restored_by=f"cli:{getpass.getuser()}")
    _tables(result.tables)


@backup_app.command("verify")
def verify(
    path_or_id: str,
    full: bool = typer.Option(False, "--full", help="also restore into a scratch database"),
    passphrase: bool = typer.Option(False, "--passphrase"),
) -> None:
    """Check a backup's manifest and checksums."""
    path, backup_id = _resolve(path_or_id)
    secret = _passphrase(passphrase)
    remote = _on_stack("verifying", "POST", "/backup/verify", {
        "file_path": path, "backup_id": backup_id, "full_restore": full,
        "passphrase": _plain(secret)})
    if remote is not None:
        tables = remote["tables"]
    else:
        from flows.backup import verify_backup

        tables = _run("verifying", verify_backup, VerifyOutcome, file_path=path,
                      backup_id=backup_id, full_restore=full, passphrase=secret).tables
    _tables(tables)
    console.print("[green]backup is intact[/]")


@backup_app.command("delete")
def delete(
    path_or_id: str,
    force: bool = typer.Option(False, "--force",
                               help="also delete the incremental backups built on it"),
) -> None:
    """Delete a backup's files and record (refused for a parent unless --force)."""
    path, backup_id = _resolve(path_or_id)
    # The API deletes recorded backups (by id); a path without a record is deleted here.
    remote = None if backup_id is None else _on_stack(
        "deleting", "DELETE", f"/backup/{backup_id}", params={"force": force})
    if remote is not None:
        result = DeleteOutcome(backup_id=backup_id, file_path=path,
                               deleted_children=remote["deletedChildren"])
    else:
        from flows.backup import delete_backup

        result = _run("deleting", delete_backup, DeleteOutcome, file_path=path,
                      backup_id=backup_id, force=force)
    also = result.deleted_children
    console.print(f"deleted {result.file_path}" + (f" and incrementals {also}" if also else ""))


@backup_app.command("prune")
def prune(
    dry_run: bool = typer.Option(True, "--dry-run/--apply"),
    keep_last: int = 7, keep_daily: int = 7, keep_weekly: int = 4, keep_monthly: int = 6,
    keep_within_hours: float = typer.Option(None),
) -> None:
    """Apply retention (dry run unless --apply)."""
    keep = {"keep_last": keep_last, "keep_daily": keep_daily, "keep_weekly": keep_weekly,
            "keep_monthly": keep_monthly, "keep_within_hours": keep_within_hours}
    remote = _on_stack("pruning", "POST", "/backup/prune", {"dry_run": dry_run, **keep})
    if remote is not None:
        result = PruneOutcome(dry_run=remote["dryRun"], keep=remote["keep"],
                              delete=remote["delete"])
    else:
        from db.backup.retention import RetentionPolicy
        from flows.backup import prune_backups

        result = _run("pruning", prune_backups, PruneOutcome, policy=RetentionPolicy(**keep),
                      dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    console.print(f"keep {sorted(int(k) for k in result.keep)}; {verb} {result.delete}")
