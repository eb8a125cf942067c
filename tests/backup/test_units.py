"""Pure functions: path checks, FK planner, retention, stream encryption, manifest."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db.backup.catalog import Column, ForeignKey, Table
from db.backup.crypto import BackupDecryptionError, EncryptingWriter, decrypt_stream
from db.backup.manifest import ManifestError, dump_manifest, load_manifest
from db.backup.planner import CycleError, plan_restore
from db.backup.retention import BackupRef, RetentionPolicy, plan_prune
from db.backup.storage import PathNotAllowed, resolve_backup_path, resolve_location


def test_paths_inside_root_resolve(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "nightly").mkdir(parents=True)
    assert resolve_location(None, root, []) == str(root.resolve())
    assert resolve_location("nightly", root, []) == str((root / "nightly").resolve())
    assert resolve_location(str(root / "nightly"), root, []) == str((root / "nightly").resolve())
    assert resolve_backup_path("nightly/b1/manifest.json", root, []).endswith("nightly/b1")
    assert resolve_location("s3://bucket/prefix/x", root, ["s3://bucket/prefix"]) == \
        "s3://bucket/prefix/x"


@pytest.mark.parametrize("bad", ["../etc", "nightly/../../x", "/etc/passwd", "/tmp",
                                 "s3://other/bucket", "s3://bucket/prefixother",
                                 "file:///etc", "link/inside", "..\\x"])
def test_paths_outside_root_refused(tmp_path: Path, bad: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to("/etc")
    with pytest.raises(PathNotAllowed):
        resolve_location(bad, root, ["s3://bucket/prefix"])


def _t(name: str, fks: list[tuple[str, str, bool]]) -> Table:
    cols = [Column("id", "int8", "bigint", -1, True)]
    out = []
    for col, ref, nullable in fks:
        cols.append(Column(col, "int8", "bigint", -1, not nullable))
        out.append(ForeignKey(f"fk_{name}_{col}", name, (col,), ref, ("id",)))
    return Table(name, cols, ("id",), out)


def test_planner_orders_parents_first_and_ignores_self_references() -> None:
    tables = {
        "reservations": _t("reservations", [("guest_id", "guests", False),
                                            ("property_id", "properties", False)]),
        "guests": _t("guests", []),
        "properties": _t("properties", []),
        "system_backups": _t("system_backups", [("parent_id", "system_backups", True)]),
    }
    plan = plan_restore(tables, list(tables))
    assert plan.order.index("guests") < plan.order.index("reservations")
    assert plan.order.index("properties") < plan.order.index("reservations")
    assert "system_backups" in plan.order and not plan.deferred


def test_planner_breaks_cycles_at_a_nullable_fk() -> None:
    tables = {"a": _t("a", [("b_id", "b", True)]), "b": _t("b", [("a_id", "a", False)])}
    plan = plan_restore(tables, ["a", "b"])
    assert plan.order == ["a", "b"] and [fk.name for fk in plan.deferred] == ["fk_a_b_id"]
    strict = {"a": _t("a", [("b_id", "b", False)]), "b": _t("b", [("a_id", "a", False)])}
    with pytest.raises(CycleError):
        plan_restore(strict, ["a", "b"])


def test_retention_keeps_last_daily_weekly_monthly_and_parents() -> None:
    now = datetime(2026, 6, 30, 12, tzinfo=UTC)
    refs = [BackupRef(i, now - timedelta(days=i), "completed") for i in range(1, 120)]
    refs.append(BackupRef(500, now - timedelta(hours=1), "incremental-parent-test", None))
    refs.append(BackupRef(501, now - timedelta(days=200), "failed"))
    refs.append(BackupRef(502, now - timedelta(minutes=5), "running"))
    refs.append(BackupRef(503, now - timedelta(days=300), "completed"))
    refs.append(BackupRef(504, now - timedelta(minutes=1), "completed", parent_id=503))
    policy = RetentionPolicy(keep_last=2, keep_daily=3, keep_weekly=2, keep_monthly=3)
    plan = plan_prune(refs, policy, now)
    assert {504, 1, 2}.issubset(plan.keep) and 3 in plan.delete
    assert 503 in plan.keep  # parent of a kept incremental
    assert 501 in plan.delete and 500 in plan.delete and 502 not in plan.delete
    assert 100 in plan.delete
    within = plan_prune(refs, RetentionPolicy(keep_last=0, keep_daily=0, keep_weekly=0,
                                              keep_monthly=0, keep_within_hours=24 * 10), now)
    assert set(range(1, 10)).issubset(within.keep) and 20 in within.delete


def test_stream_encryption_round_trip_and_tamper() -> None:
    key, other = os.urandom(32), os.urandom(32)
    plain = os.urandom(3 * (1 << 20) + 123)
    buf = io.BytesIO()
    w = EncryptingWriter(buf, key, "t.parquet.enc")
    for i in range(0, len(plain), 70000):
        w.write(plain[i : i + 70000])
    w.finish()
    blob = buf.getvalue()
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(blob), out, key, "t.parquet.enc")
    assert out.getvalue() == plain
    for bad_key, data, name in [(other, blob, "t.parquet.enc"), (key, blob, "u.parquet.enc"),
                                (key, blob[:-(1 << 20) - 16], "t.parquet.enc"),
                                (key, blob[:100] + bytes([blob[100] ^ 1]) + blob[101:],
                                 "t.parquet.enc")]:
        with pytest.raises(BackupDecryptionError):
            decrypt_stream(io.BytesIO(data), io.BytesIO(), bad_key, name)


def test_manifest_detects_any_change() -> None:
    raw = dump_manifest({"a": 1, "tables": {"x": {"rows": 10}}})
    assert load_manifest(raw)["tables"]["x"]["rows"] == 10
    for i in range(len(raw)):
        changed = raw[:i] + bytes([raw[i] ^ 1]) + raw[i + 1 :]
        with pytest.raises(ManifestError):
            load_manifest(changed)
