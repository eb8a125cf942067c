"""A process that opens a sync log and a backup the way the flows do, then hangs mid-write.

`python -m tests.ops.hold_run <backup-root> <scratch-dir>` prints `ready <log> <backup> <dir>`
once the rows are committed, a `.partial` file is half written and a scratch directory is
open; it then sleeps until killed (the tests kill it with SIGKILL).
"""

from __future__ import annotations

import sys
import tempfile
import time

from db.backup import records
from db.backup.storage import Store
from db.engine import session_scope
from db.repositories.sync_logs import start_log


def main() -> None:
    root, scratch = sys.argv[1], sys.argv[2]
    with session_scope() as session:
        log_id = start_log(session, None, "sync_bookings", None)
        row = records.create_record(session, location=root, created_by="test", backup_type="full",
                                    parent_id=None, flow_run_id=None, options={})
        backup_id = row.id
        path = f"{root}/backup-{backup_id}"
        records.set_path(session, backup_id, path)
    store = Store.open(path)
    store.makedirs()
    work = tempfile.mkdtemp(prefix="innsync-restore-", dir=scratch)
    with open(f"{work}/t.parquet", "wb") as held, store.open_write("reservations.parquet") as fh:
        held.write(b"x")
        fh.write(b"half a table")
        fh.flush()
        print("ready", log_id, backup_id, path, work, flush=True)
        time.sleep(600)


if __name__ == "__main__":
    main()
