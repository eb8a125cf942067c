"""Consistent Parquet backups of the application database: pure logic, no Prefect.

Layout of one backup (a directory, local or fsspec URL)::

    <name>/
        <table>.parquet        one file per table (``.parquet.enc`` when encrypted)
        manifest.json          written last: its presence marks the backup complete
"""

FORMAT_VERSION = 1
