"""What a budget has used: the cost of a scope's calls in a period, read from the roll-ups where it can be.

The limiter loads a budget's counter from the ledger the first time it meets the budget in its period, and
the dashboard's overview shows every budget with what it has used: a day, a month or all time of a scope's
calls. Summed from the calls, a month of a busy project is hundreds of thousands of rows; the roll-ups
(``_rollup_sql.py``) hold the same cost per project and key, user or ``provider/model``, by hour, day and
week, so the period is read from a few roll-up rows, and from the calls only at its ragged edges (a period
is whole days, so it has none; any other window is exact too). Calls paid with the caller's own provider
key have ``own_`` roll-ups of their own, taken off when a scope leaves them out.

A scope the roll-ups do not hold apart (a key, user or model in every project, a model on any provider) is
summed from the calls, as before the roll-ups.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from relaygate.store._rollup_sql import OWN_KEY_DIMS
from relaygate.store._sql_rows import SPEND_COLUMNS, SQLRows, sql_text
from relaygate.store.records import SpendKind, SpendScope
from relaygate.store.rollups import FOUR_WEEKS, segments

__all__ = ["SpendQueries", "rolled_up"]


def rolled_up(scope: SpendScope) -> tuple[str, str, str] | None:
    """The project, dimension and value of the roll-up rows holding ``scope``'s cost; ``None`` if none do."""
    kind = SpendKind(scope.kind)
    if kind is SpendKind.PROJECT:
        if scope.project_id is not None and scope.project_id != scope.id:
            return None
        return sql_text(scope.id), "all", ""
    if scope.project_id is None:
        return None
    if kind is SpendKind.MODEL:
        # Provider names hold no "/" (settings refuse them), so "provider/model" names one pair.
        if not scope.provider or "/" in scope.provider:
            return None
        return sql_text(scope.project_id), "model", f"={sql_text(scope.provider)}/{sql_text(scope.id)}"
    return sql_text(scope.project_id), kind.value, "=" + sql_text(scope.id)


class SpendQueries(SQLRows):
    """:meth:`spend`, over the hooks of :class:`SQLRows`."""

    async def spend(self, scope: SpendScope, start: datetime, end: datetime) -> int:
        found = rolled_up(scope)
        if found is None:
            return await self._spend_of_calls(scope, start, end)
        project, dim, value = found
        parts: list[str] = []
        args: list[Any] = []
        for segment in segments(start, end, coarsest=FOUR_WEEKS):
            bounds = [self._bind_time(segment.start), self._bind_time(segment.end)]
            if segment.source == "calls":
                where, where_args = self._spend_where(scope)
                parts.append(
                    f"SELECT SUM(cost_nanos) AS cost FROM calls WHERE {where} AND started_at >= ? AND started_at < ?"
                )
                args += [*where_args, *bounds]
            elif scope.caller_keys:
                parts.append(
                    "SELECT SUM(cost_nanos) AS cost FROM call_rollups WHERE project_id = ? AND span = ? AND dim = ? "
                    "AND bucket_start >= ? AND bucket_start < ? AND value = ?"
                )
                args += [project, segment.source, dim, *bounds, value]
            else:
                parts.append(
                    "SELECT SUM(CASE WHEN dim = ? THEN cost_nanos ELSE -cost_nanos END) AS cost FROM call_rollups "
                    "WHERE project_id = ? AND span = ? AND dim IN (?, ?) AND bucket_start >= ? AND bucket_start < ? "
                    "AND value = ?"
                )
                args += [dim, project, segment.source, dim, OWN_KEY_DIMS[dim], *bounds, value]
        if not parts:
            return 0
        rows = await self._fetch(f"SELECT SUM(cost) FROM ({' UNION ALL '.join(parts)}) AS parts", args)
        return int(rows[0][0] or 0)

    def _spend_where(self, scope: SpendScope) -> tuple[str, list[Any]]:
        where = [f"{SPEND_COLUMNS[SpendKind(scope.kind)]} = ?"]
        args: list[Any] = [scope.id]
        if scope.project_id is not None:
            where.append("project_id = ?")
            args.append(scope.project_id)
        if scope.provider is not None:
            where.append("provider = ?")
            args.append(scope.provider)
        if not scope.caller_keys:
            where.append("caller_key IS NULL")
        return " AND ".join(where), args

    async def _spend_of_calls(self, scope: SpendScope, start: datetime, end: datetime) -> int:
        where, args = self._spend_where(scope)
        rows = await self._fetch(
            f"SELECT COALESCE(SUM(cost_nanos), 0) FROM calls WHERE {where} AND started_at >= ? AND started_at < ?",
            [*args, *self._window(start, end)],
        )
        return int(rows[0][0])
