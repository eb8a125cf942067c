"""Compress ARI updates while remembering which input updates each compressed range serves.

`push_ari` must answer once per *input* update, but sends *compressed* ranges; these helpers
keep the mapping both ways (built on `channels.ari.expand`/`compress`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from channels.ari import ARIKey, DayValues, compress, days_of, values_of
from channels.base import ARIUpdate, UpdateResult


def expand_merged(updates: Sequence[ARIUpdate]) -> dict[ARIKey, dict[date, DayValues]]:
    """Per-date values where later updates win field by field (an availability update and a
    min-LOS update for the same day both survive, unlike `channels.ari.expand`)."""
    out: dict[ARIKey, dict[date, DayValues]] = {}
    for update in updates:
        cal = out.setdefault((update.partner_room_type_code, update.partner_rate_plan_code), {})
        values = values_of(update)
        changes = values.as_update_fields()
        for day in days_of(update):
            before = cal.get(day)
            cal[day] = values if before is None else replace(before, **changes)
    return out


def compress_with_origins(
    updates: Sequence[ARIUpdate], *, weekday_patterns: bool = False
) -> tuple[list[ARIUpdate], list[set[int]]]:
    """(compressed updates, for each input index the compressed indexes covering its dates).

    Later inputs win field by field on overlapping dates; an input is answered by the ranges
    that now carry its dates.
    """
    compressed = compress(expand_merged(updates), weekday_patterns=weekday_patterns)
    owner: dict[tuple[str, str | None], dict[object, int]] = {}
    for j, c in enumerate(compressed):
        days = owner.setdefault((c.partner_room_type_code, c.partner_rate_plan_code), {})
        for day in days_of(c):
            days[day] = j
    origins: list[set[int]] = []
    for u in updates:
        days = owner.get((u.partner_room_type_code, u.partner_rate_plan_code), {})
        origins.append({days[d] for d in days_of(u) if d in days})
    return compressed, origins


def combine(update: ARIUpdate, parts: Sequence[UpdateResult], warnings: Sequence[str] = ()) -> UpdateResult:
    """One input's result from the results of the pieces that carried it (all must be ok)."""
    failed = [p for p in parts if not p.ok]
    notes = list(warnings) + [w for p in parts for w in p.warnings]
    if not failed:
        return UpdateResult(update=update, ok=True, warnings=list(dict.fromkeys(notes)))
    first = failed[0]
    errors = list(dict.fromkeys(p.error or p.error_code or "failed" for p in failed))
    return UpdateResult(
        update=update,
        ok=False,
        error_code=first.error_code,
        error="; ".join(errors),
        transient=all(p.transient for p in failed),
        warnings=list(dict.fromkeys(notes)),
    )
