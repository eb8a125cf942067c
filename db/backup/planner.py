"""Restore order from the foreign-key graph: parents first; cycles broken at nullable FKs."""

from __future__ import annotations

from dataclasses import dataclass, field

from db.backup.catalog import ForeignKey, Table


class CycleError(Exception):
    """A foreign-key cycle with no nullable column to break it."""


@dataclass
class RestorePlan:
    """Tables in load order, and FKs to fill by a later UPDATE (cycle breakers)."""

    order: list[str]
    deferred: list[ForeignKey] = field(default_factory=list)


def _nullable(fk: ForeignKey, tables: dict[str, Table]) -> bool:
    table = tables[fk.table]
    return all(not table.column(c).not_null for c in fk.columns)


def plan_restore(tables: dict[str, Table], selected: list[str]) -> RestorePlan:
    """Order `selected` so every FK parent loads before its children.

    Self-references need no ordering (checks run at statement end, or are disabled);
    a cycle across tables is broken at a nullable FK, loaded as NULL then updated.
    """
    chosen = set(selected)
    edges: dict[str, set[str]] = {t: set() for t in selected}
    fks = [
        fk
        for t in selected
        for fk in tables[t].foreign_keys
        if fk.ref_table in chosen and fk.ref_table != t
    ]
    for fk in fks:
        edges[fk.table].add(fk.ref_table)
    order: list[str] = []
    deferred: list[ForeignKey] = []
    remaining = set(selected)
    while remaining:
        ready = sorted(t for t in remaining if not (edges[t] & remaining))
        if ready:
            order.extend(ready)
            remaining -= set(ready)
            continue
        # A cycle: defer one nullable FK inside the remaining set, then retry.
        breakable = [
            fk for fk in fks
            if fk.table in remaining and fk.ref_table in remaining and fk not in deferred
            and _nullable(fk, tables)
        ]
        if not breakable:
            raise CycleError(f"foreign-key cycle without a nullable column: {sorted(remaining)}")
        fk = sorted(breakable, key=lambda f: (f.table, f.name))[0]
        deferred.append(fk)
        still = [f for f in fks if f.table == fk.table and f.ref_table == fk.ref_table
                 and f not in deferred]
        if not still:
            edges[fk.table].discard(fk.ref_table)
    return RestorePlan(order, deferred)
