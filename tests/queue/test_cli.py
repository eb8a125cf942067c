"""`innsync queue status|retry` against the test database (they commit)."""

from __future__ import annotations

from sqlalchemy import text
from typer.testing import CliRunner

from db.repositories import queue
from innsync.cli import app


def test_status_and_retry(committed):
    a = queue.enqueue(committed, "guest", 1, "update")
    queue.enqueue(committed, "guest", 2, "update")
    b = queue.enqueue(committed, "guest", 3, "update")
    committed.execute(text("UPDATE data_sync_queue SET status = 'failed', attempts = 3 "
                           "WHERE id IN (:a, :b)"), {"a": a, "b": b})
    committed.commit()
    runner = CliRunner()
    status = runner.invoke(app, ["queue", "status"])
    assert status.exit_code == 0, status.output
    assert status.output.split() == ["pending", "1", "failed", "2", "processing", "no"]
    assert runner.invoke(app, ["queue", "retry"]).exit_code == 2
    assert runner.invoke(app, ["queue", "retry", "--id", "1", "--all-failed"]).exit_code == 2
    one = runner.invoke(app, ["queue", "retry", "--id", str(a)])
    assert one.exit_code == 0 and "re-queued 1" in one.output
    assert runner.invoke(app, ["queue", "retry", "--id", str(a)]).exit_code == 1  # not failed
    rest = runner.invoke(app, ["queue", "retry", "--all-failed"])
    assert rest.exit_code == 0 and "re-queued 1" in rest.output
    assert runner.invoke(app, ["queue", "status"]).output.split()[1:4:2] == ["3", "0"]
