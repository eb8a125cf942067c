"""Consistent Parquet backups of the application database: pure logic, no Prefect.

Layout of one backup (a directory, local or fsspec URL)::

    <name>/
        <table>.parquet        one file per table (``.parquet.enc`` when encrypted)
        <table>.deleted.parquet  incremental backups: keys deleted since the parent
        manifest.json          written last: its presence marks the backup complete

See README.md beside this file for incremental chains and restore-speed measurements.
"""

FORMAT_VERSION = 1
