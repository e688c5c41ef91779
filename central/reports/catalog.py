"""Every head-office report (SPEC E1–E5, C4, F5, I5) as one :class:`Report`.

A report is columns (Chinese title, English title, unit) and rows of plain numbers,
computed from the summary tables (:mod:`central.store.summary`) by
:func:`run_report`. The JSON API returns :meth:`Report.to_json`; the Excel and CSV exports
(:mod:`central.reports.export`) write the very same rows, so every figure agrees.

Averages and times are in minutes, rounded to 2 decimals; shares in percent, rounded to
1 decimal; a figure that does not exist (an average of nobody) is ``None``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..figures import WAIT_BAND_WORDS
from ..store.summary import MAX_MEASURES, MEASURES, MIN_MEASURES, report_timezone
from .labels import Labels, labels_from_store
from .scope import Period, Scope, ScopeError

if TYPE_CHECKING:
    from ..store.reader import Reader

__all__ = ["REPORTS", "Chart", "Column", "Report", "ReportSpec", "run_report"]

BANDS = ("le2", "le5", "le10", "gt10")  # the wait bands' figures, in WAIT_BAND_WORDS' order
SATISFIED_FROM = 4  # scores at or above this count as satisfied (满意, 非常满意)
UNITS = {"people": ("人", "people"), "min": ("分钟", "min"), "pct": ("%", "%"),
         "times": ("次", "times"), "": ("", "")}


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its key in each row, Chinese and English titles, and its unit."""

    key: str
    title: str
    title_en: str
    unit: str = ""  # people, min, pct, times or ""

    @property
    def header(self) -> str:
        """``平均等待时间(分钟) Average wait (min)``: Chinese first, units in both."""
        zh, en = UNITS[self.unit]
        return (f"{self.title}({zh}) {self.title_en} ({en})" if zh
                else f"{self.title} {self.title_en}")

    def to_json(self) -> dict[str, str]:
        zh, en = UNITS[self.unit]
        return {"key": self.key, "title": self.title, "title_en": self.title_en,
                "unit": zh, "unit_en": en, "header": self.header}


@dataclass(frozen=True, slots=True)
class Chart:
    """What a page (and the Excel sheet) draws: ``series`` columns over ``category``."""

    kind: str  # column, bar, line
    title: str
    category: str
    series: tuple[str, ...]
    stacked: bool = False
    y_title: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "title": self.title, "category": self.category,
                "series": list(self.series), "stacked": self.stacked, "y_title": self.y_title}


@dataclass
class Report:
    """A computed report: what JSON, Excel and CSV all show."""

    id: str
    title: str
    title_en: str
    spec: str
    period: Period
    scope: Scope
    generated_at: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    total: dict[str, Any] | None = None
    chart: Chart | None = None
    notes: list[str] = field(default_factory=list)
    rows_total: int | None = None  # None: ``rows`` are all of them; else ``rows`` is a page

    def to_json(self) -> dict[str, Any]:
        return {
            "report": self.id, "title": self.title, "title_en": self.title_en,
            "spec": self.spec,
            "period": {"kind": self.period.kind, "value": self.period.value,
                       "label": self.period.label},
            "scope": {**self.scope.describe(), "label": self.scope.label},
            "generated_at": self.generated_at,
            "columns": [c.to_json() for c in self.columns],
            "rows": self.rows, "total": self.total,
            "chart": self.chart.to_json() if self.chart else None,
            "notes": self.notes,
        }


@dataclass
class Ctx:
    store: Reader
    period: Period
    scope: Scope
    labels: Labels
    limit: int = 5000
    now: float | None = None
    teller: str | None = None  # the staff search's 工号 (teller-services)
    outcome: str = "all"  # the staff search's filter: all, served, not_served
    page: tuple[int, int] | None = None  # (first row, rows): the JSON's page, or all rows
    rows_total: int | None = None  # set by a report that read only the page's rows


Built = tuple[list[Column], list[dict[str, Any]], dict[str, Any] | None, Chart | None,
              list[str]]


@dataclass(frozen=True)
class ReportSpec:
    id: str
    title: str
    title_en: str
    spec: str
    build: Callable[[Ctx], Built]
    description: str = ""


def run_report(store: Reader, report_id: str, period: Period, scope: Scope,
               labels: Labels | None = None, *, now: float | None = None,
               limit: int = 5000, teller: str | None = None, outcome: str = "all",
               page: tuple[int, int] | None = None) -> Report:
    """Compute report ``report_id`` for ``period`` and ``scope`` (``teller`` and
    ``outcome``: the staff search's 工号 and filter, docs/reports.md).

    ``page`` (first row, rows): only those rows are wanted (the JSON's page). The grouped
    listings then let the database sort and cut them, and total every group in the same
    query, and the report says how many rows there are in ``rows_total``; the other
    reports compute all their rows (``rows_total`` None) and the caller cuts the page.

    Raises:
        KeyError: no such report.
        ScopeError: the staff search without a 工号, or an unknown ``outcome``.
    """
    spec = REPORTS[report_id]
    ctx = Ctx(store, period, scope, labels or labels_from_store(store), limit, now, teller,
              outcome, page)
    columns, rows, total, chart, notes = spec.build(ctx)
    tz = report_timezone(store)
    stamp = dt.datetime.now(tz) if now is None else dt.datetime.fromtimestamp(now, tz)
    return Report(spec.id, spec.title, spec.title_en, spec.spec, period, scope,
                  stamp.isoformat(timespec="seconds"), columns, rows, total, chart, notes,
                  ctx.rows_total)


# --- reading the summaries -------------------------------------------------------------------


def _agg(m: str) -> str:
    if m in MAX_MEASURES:
        return f"MAX({m})"
    if m in MIN_MEASURES:
        return f"MIN({m})"
    return f"SUM({m})"


# (hourly, period kind) -> the summary table a report reads: one row per key of the period
# (the year tables are folded with the month ones, central/store/summary.py)
CUBE_TABLES = {(True, "day"): "rpt_slot", (True, "month"): "rpt_hour",
               (True, "year"): "rpt_hour_year", (False, "day"): "rpt_day",
               (False, "month"): "rpt_month", (False, "year"): "rpt_year"}
RATING_TABLES = {"day": "rpt_rating_day", "month": "rpt_rating_month",
                 "year": "rpt_rating_year"}


def _period_sql(period: Period) -> tuple[str, list[Any]]:
    """The condition on the period's column (``day``, ``month`` or ``year``: the one the
    period's summary tables are keyed by)."""
    return f"{period.kind} = ?", [period.value]


def _cube(ctx: Ctx, by: Sequence[str], measures: Sequence[str] = MEASURES, *,
          hourly: bool = False) -> list[dict[str, Any]]:
    """Summed ``measures`` grouped by ``by`` (branch, queue, ctype, teller, hour)."""
    table = CUBE_TABLES[(hourly, ctx.period.kind)]
    dims = [("minute / 60" if d == "hour" and table == "rpt_slot" else d) for d in by]
    where, args = _period_sql(ctx.period)
    scope_sql, scope_args = ctx.scope.where()
    sums = [f"{_agg(m)} AS {m}" for m in measures]
    select = ", ".join([*(f"{e} AS {d}" for e, d in zip(dims, by, strict=True)), *sums,
                        "COUNT(*) AS n_rows"])
    group = f" GROUP BY {', '.join(str(i + 1) for i in range(len(by)))}" if by else ""
    cur = ctx.store.execute(f"SELECT {select} FROM {table} WHERE {where}{scope_sql}{group}",
                            [*args, *scope_args])
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return [r for r in rows if r["n_rows"]]


Cell = tuple[str, str, list[Any], str]
# (name, the group's aggregate SQL, its arguments, how the groups are totalled: SUM, MAX, MIN)


def _measure_cells(measures: Iterable[str]) -> list[Cell]:
    return [(m, _agg(m), [], _agg(m).split("(")[0]) for m in measures]


def _page(ctx: Ctx, by: Sequence[str], cells: Sequence[Cell], *, table: str = "",
          extra: str = "", having: str = "", order: str = ""
          ) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    """The page ``ctx.page`` of the groups ``by`` (sorted by ``order``, default ``by``),
    each with its ``cells``; every group's cells totalled; and the number of groups — in
    one query: the database groups, sorts and cuts, the page's rows alone come back
    (a province's 60,000 tellers: 1,000 rows, not 60,000 to sort and name here).

    ``extra`` narrows the rows grouped (``AND …``), ``having`` the groups; ``{c}`` in
    ``order`` stands for the collation of code points."""
    table = table or CUBE_TABLES[(False, ctx.period.kind)]
    where, args = _period_sql(ctx.period)
    scope_sql, scope_args = ctx.scope.where()
    text = ' COLLATE "C"' if ctx.store.postgres else ""  # the code points' order, as Python
    order = order.format(c=text) if order else ", ".join(f"{d}{text}" for d in by)
    first, count = ctx.page or (0, 0)
    select = [*by, *(f"{expr} AS {name}" for name, expr, _, _ in cells),
              "COUNT(*) OVER () AS groups_", *(f"{how}({expr}) OVER () AS total_{name}"
                                               for name, expr, _, how in cells)]
    cell_args = [a for _, _, xs, _ in cells for a in xs]
    sql = (f"SELECT {', '.join(select)} FROM {table} WHERE {where}{scope_sql}{extra} "
           f"GROUP BY {', '.join(by)}{having} ORDER BY {order} LIMIT ? OFFSET ?")
    got = _dicts(ctx, sql, [*cell_args, *cell_args, *args, *scope_args], count, first)
    if not got and first:  # past the last group: the totals all the same
        got = _dicts(ctx, sql, [*cell_args, *cell_args, *args, *scope_args], 1, 0)
        rows: list[dict[str, Any]] = []
    else:
        rows = [{k: v for k, v in r.items() if k != "groups_" and not k.startswith("total_")}
                for r in got]
    if not got:
        return [], {name: (None if how == "MIN" else 0) for name, _, _, how in cells}, 0
    totals = {name: got[0][f"total_{name}"] for name, _, _, _ in cells}
    return rows, totals, int(got[0]["groups_"])


def _dicts(ctx: Ctx, sql: str, args: list[Any], count: int, first: int
           ) -> list[dict[str, Any]]:
    cur = ctx.store.execute(sql, [*args, count, first])
    names = [d[0] for d in cur.description]
    # PostgreSQL sums integers' sums as numeric: whole numbers, as ints
    return [{k: int(v) if isinstance(v, Decimal) else v for k, v in zip(names, r, strict=True)}
            for r in cur.fetchall()]


def _zero() -> dict[str, Any]:
    return {m: (None if m in MIN_MEASURES else 0) for m in MEASURES}


def _sum_rows(rows: Iterable[dict[str, Any]], measures: Sequence[str] = MEASURES
              ) -> dict[str, Any]:
    out = _zero()
    for r in rows:
        for m in measures:
            v = r.get(m)
            if v is None:
                continue
            if m in MAX_MEASURES:
                out[m] = max(out[m], v)
            elif m in MIN_MEASURES:
                out[m] = v if out[m] is None else min(out[m], v)
            else:
                out[m] += v
    return out


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60.0, 2)


def _avg_min(total: float, n: int) -> float | None:
    return round(total / n / 60.0, 2) if n else None


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _n(m: dict[str, Any], key: str) -> int:
    return int(m[key] or 0)


def _count(key: str) -> Callable[[dict[str, Any]], int]:
    return lambda m: _n(m, key)


def _share(part: str, whole: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda m: _pct(_n(m, part), _n(m, whole))


Figure = tuple[tuple[str, ...], Callable[[dict[str, Any]], Any]]
# shown figure -> (the measures it needs, how it is computed); docs/reports.md defines each
FIGURES: dict[str, Figure] = {
    **{k: ((k,), _count(k))
       for k in ("issued", "served", "no_show", "not_served", "transferred", "rated",
                 "rating_bad", "over15", "over30", "over60")},
    "calls": (("called", "recalled"), lambda m: _n(m, "called") + _n(m, "recalled")),
    "waited": (("wait_n",), lambda m: _n(m, "wait_n")),
    "avg_wait": (("wait_sum", "wait_n"),
                 lambda m: _avg_min(m["wait_sum"] or 0.0, _n(m, "wait_n"))),
    "max_wait": (("wait_max", "wait_n"),
                 lambda m: _minutes(m["wait_max"]) if _n(m, "wait_n") else None),
    "total_wait": (("wait_sum",), lambda m: round((m["wait_sum"] or 0.0) / 60.0, 2)),
    "handled": (("handle_n",), lambda m: _n(m, "handle_n")),
    "avg_handle": (("handle_sum", "handle_n"),
                   lambda m: _avg_min(m["handle_sum"] or 0.0, _n(m, "handle_n"))),
    "max_handle": (("handle_max", "handle_n"),
                   lambda m: _minutes(m["handle_max"]) if _n(m, "handle_n") else None),
    "min_handle": (("handle_min", "handle_n"),
                   lambda m: _minutes(m["handle_min"]) if _n(m, "handle_n") else None),
    "total_handle": (("handle_sum",), lambda m: round((m["handle_sum"] or 0.0) / 60.0, 2)),
    "avg_calls": (("called", "recalled", "served"),
                  lambda m: round((_n(m, "called") + _n(m, "recalled")) / _n(m, "served"), 2)
                  if _n(m, "served") else None),
    "max_calls": (("calls_max", "served"),
                  lambda m: _n(m, "calls_max") if _n(m, "served") else None),
    **{band: ((f"wait_{band}",), _count(f"wait_{band}"))
       for band in BANDS},
    **{f"{band}_pct": ((f"wait_{band}", "wait_n"), _share(f"wait_{band}", "wait_n"))
       for band in BANDS},
}


def figures(m: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The shown figures ``keys`` of summed measures ``m``."""
    return {k: FIGURES[k][1](m) for k in keys}


def needs(keys: Iterable[str]) -> tuple[str, ...]:
    """The measures the figures ``keys`` are computed from."""
    wanted = {x for k in keys for x in FIGURES[k][0]}
    return tuple(m for m in MEASURES if m in wanted)


# --- columns ---------------------------------------------------------------------------------

C = Column
BRANCH = [C("branch", "网点代码", "Branch code"), C("branch_name", "网点名称", "Branch")]
QUEUE = [C("queue", "业务代码", "Business code"), C("queue_name", "业务", "Business")]
CTYPE = [C("ctype", "客户类型代码", "Customer type code"),
         C("ctype_name", "客户类型", "Customer type")]
TELLER = [C("teller", "柜员号", "Teller id"), C("teller_name", "柜员", "Teller")]
COL = {c.key: c for c in [
    C("issued", "客户总数", "Customers", "people"),
    C("served", "办理总数", "Served", "people"),
    C("no_show", "弃号总数", "Discarded (no-show)", "people"),
    C("not_served", "未办理总数", "Not served", "people"),
    C("transferred", "转移", "Transferred", "people"),
    C("calls", "呼叫次数", "Calls", "times"),
    C("waited", "等待人数", "Customers called", "people"),
    C("avg_wait", "平均等待时间", "Average wait", "min"),
    C("max_wait", "最长等待时间", "Longest wait", "min"),
    C("total_wait", "等候时间合计", "Total waiting time", "min"),
    C("avg_handle", "平均办理时间", "Average handling time", "min"),
    C("max_handle", "最长办理时间", "Longest handling time", "min"),
    C("min_handle", "最短办理时间", "Shortest handling time", "min"),
    C("total_handle", "办理时间合计", "Total handling time", "min"),
    C("avg_calls", "平均呼叫次数", "Calls per customer", "times"),
    C("max_calls", "最多呼叫次数", "Most calls for one customer", "times"),
    *(C(band, zh, en, "people") for band, (zh, en) in zip(BANDS, WAIT_BAND_WORDS, strict=True)),
    *(C(f"{band}_pct", f"{zh}占比", f"{en}, share", "pct")
      for band, (zh, en) in zip(BANDS, WAIT_BAND_WORDS, strict=True)),
    C("over15", "等待超过15分钟", "Waited over 15 min", "people"),
    C("over30", "等待超过30分钟", "Waited over 30 min", "people"),
    C("over60", "等待超过60分钟", "Waited over 60 min", "people"),
    C("rated", "评价总数", "Ratings", "times"),
    C("satisfied", "满意数", "Satisfied", "times"),
    C("satisfaction", "满意率", "Satisfaction", "pct"),
    C("rating_bad", "差评数", "Bad ratings", "times"),
    C("bad_pct", "差评率", "Bad-rating share", "pct"),
]}


def _cols(*keys: str) -> list[Column]:
    return [COL[k] for k in keys]


def _named(ctx: Ctx, row: dict[str, Any]) -> dict[str, Any]:
    """Add the names of the codes a row carries."""
    lab = ctx.labels
    out = dict(row)
    if "branch" in row:
        out["branch_name"] = lab.branch(row["branch"])
    if "queue" in row:
        out["queue_name"] = lab.queue(row["queue"])
    if "ctype" in row:
        out["ctype_name"] = lab.ctype(row["ctype"])
    if "teller" in row and "branch" in row:
        out["teller_name"] = lab.teller(row["branch"], row["teller"])
    return out


def _dims(row: dict[str, Any], by: Sequence[str]) -> dict[str, Any]:
    return {d: row[d] for d in by}


def _table(ctx: Ctx, by: Sequence[str], keys: Sequence[str], *, total: bool = True,
           keep: Callable[[dict[str, Any]], bool] | None = None,
           paged: tuple[str, str, str] | None = None
           ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Rows grouped ``by`` with figures ``keys`` (``keep`` may look at their measures),
    sorted, and a total row.

    ``paged`` (``keep`` as SQL on the rows and on the groups, the rows' order as SQL; ""
    for none, or the ``by`` order): how the database gives a page of them, when the
    caller asked for one (``ctx.page``)."""
    if paged is not None and ctx.page is not None:
        extra, having, sql_order = paged
        raw, sums, ctx.rows_total = _page(ctx, by, _measure_cells(needs(keys)), extra=extra,
                                          having=having, order=sql_order)
        rows = [_named(ctx, {**_dims(r, by), **figures(r, keys)}) for r in raw]
        return rows, {"label": "合计 Total", **figures({**_zero(), **sums}, keys)} \
            if total else None
    raw = _cube(ctx, by, needs(keys))
    if keep is not None:
        raw = [r for r in raw if keep(r)]
    order = _sort_key(ctx, by)
    raw.sort(key=order)
    rows = [_named(ctx, {**_dims(r, by), **figures(r, keys)}) for r in raw]
    tot = {"label": "合计 Total", **figures(_sum_rows(raw, needs(keys)), keys)} \
        if total else None
    return rows, tot


def _sort_key(ctx: Ctx, by: Sequence[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    ctypes = list(ctx.labels.ctypes)

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        out: list[Any] = []
        for d in by:
            v = r[d]
            if d == "ctype":
                out.append((ctypes.index(v) if v in ctypes else len(ctypes), v))
            else:
                out.append(v)
        return tuple(out)
    return key


def _pivot(ctx: Ctx, by: Sequence[str], across: str, measure: str,
           label: Callable[[str], str], *, tellers: bool = False, paged: bool = False
           ) -> tuple[list[Column], list[dict[str, Any]], dict[str, Any], list[str]]:
    """Rows ``by``, one column per value of ``across`` holding ``measure``, plus a total;
    ``tellers``: only the rows of a teller (the columns still every value found).
    ``paged``: the database may give the page asked for (``ctx.page``)."""
    if paged and ctx.page is not None:
        return _pivot_page(ctx, by, across, measure, label, tellers)
    raw = _cube(ctx, [*by, across], needs([measure]))
    values = (ctx.labels.ctype_order({r[across] for r in raw}) if across == "ctype"
              else sorted({r[across] for r in raw}))
    blank = {f"{across}:{v}": 0 for v in values}
    count = FIGURES[measure][1]
    grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in raw:
        key = tuple(r[d] for d in by)
        row = grouped.get(key)
        if row is None:
            row = grouped[key] = {**_dims(r, by), **blank, "all": 0}
        n = int(count(r))
        row[f"{across}:{r[across]}"] += n
        row["all"] += n
    rows = [_named(ctx, grouped[key]) for key in sorted(grouped)
            if not tellers or grouped[key]["teller"]]
    cols = _pivot_columns(across, values, measure, label)
    total = {"label": "合计 Total", **{c.key: sum(r[c.key] for r in rows) for c in cols}}
    return cols, rows, total, [c.key for c in cols[:-1]]


def _pivot_columns(across: str, values: Iterable[str], measure: str,
                   label: Callable[[str], str]) -> list[Column]:
    unit = COL[measure].unit
    return [*(C(f"{across}:{v}", label(v), v, unit) for v in values),
            C("all", "合计", "Total", unit)]


def _pivot_page(ctx: Ctx, by: Sequence[str], across: str, measure: str,
                label: Callable[[str], str], tellers: bool
                ) -> tuple[list[Column], list[dict[str, Any]], dict[str, Any], list[str]]:
    """:func:`_pivot`'s page: a column per value of ``across`` summed by the database."""
    found = _distinct(ctx, CUBE_TABLES[(False, ctx.period.kind)], across)
    values = ctx.labels.ctype_order(set(found)) if across == "ctype" else sorted(found)
    cells: list[Cell] = [(f"v{i}", f"SUM(CASE WHEN {across} = ? THEN {measure} ELSE 0 END)",
                          [v], "SUM") for i, v in enumerate(values)]
    cells.append(("every", f"SUM({measure})", [], "SUM"))  # ("all" is SQL's own word)
    raw, sums, ctx.rows_total = _page(ctx, by, cells,
                                      extra=" AND teller <> ''" if tellers else "")
    names = {"every": "all", **{f"v{i}": f"{across}:{v}" for i, v in enumerate(values)}}
    rows = [_named(ctx, {names.get(k, k): v for k, v in r.items()}) for r in raw]
    cols = _pivot_columns(across, values, measure, label)
    total = {"label": "合计 Total", **{names.get(k, k): v for k, v in sums.items()}}
    return cols, rows, total, [c.key for c in cols[:-1]]


def _distinct(ctx: Ctx, table: str, column: str) -> list[Any]:
    """The values of ``column`` in ``table``'s rows of the period and scope."""
    where, args = _period_sql(ctx.period)
    scope_sql, scope_args = ctx.scope.where()
    return [r[0] for r in ctx.store.execute(
        f"SELECT DISTINCT {column} FROM {table} WHERE {where}{scope_sql}",
        [*args, *scope_args]).fetchall()]


# --- E1, E2: customers -----------------------------------------------------------------------


def _wait_by_type(ctx: Ctx) -> Built:
    keys = ("waited", "avg_wait", "max_wait", "le2", "le5", "le10", "gt10",
            "le2_pct", "le5_pct", "le10_pct", "gt10_pct")
    rows, total = _table(ctx, ["ctype"], keys, keep=lambda r: bool(r["wait_n"]))
    chart = Chart("column", "等待时间分布(按客户类型) Wait distribution by customer type",
                  "ctype_name", ("le2_pct", "le5_pct", "le10_pct", "gt10_pct"),
                  y_title="占比 share (%)")
    return [*CTYPE, *_cols(*keys)], rows, total, chart, [
        "等待时间 = 第一次叫号 − 取号;重呼不重新计时。Wait = first call − issue."]


def _business_by_type(ctx: Ctx) -> Built:
    cols, rows, total, series = _pivot(ctx, ["queue"], "ctype", "issued", ctx.labels.ctype)
    chart = Chart("column", "业务类型(按客户类型) Businesses by customer type", "queue_name",
                  tuple(series), stacked=True, y_title="客户数 customers")
    return [*QUEUE, *cols], rows, total, chart, ["按取号计数。Counted by tickets issued."]


# --- E3: tellers -----------------------------------------------------------------------------


def _tellers(ctx: Ctx) -> Built:
    keys = ("served", "avg_handle", "max_handle", "min_handle", "total_handle", "calls",
            "avg_calls", "max_calls", "no_show", "transferred")
    rows, total = _table(ctx, ["branch", "teller"], keys,
                         keep=lambda r: bool(r["teller"]), paged=(" AND teller <> ''", "", ""))
    chart = Chart("bar", "柜员平均办理时间 Average handling time per teller", "teller_name",
                  ("avg_handle",), y_title="分钟 min") if _shown(ctx, rows) <= 60 else None
    return [*BRANCH, *TELLER, *_cols(*keys)], rows, total, chart, [
        "办理时间 = 办结 − 最后一次叫号。Handling = finish − last call."]


def _shown(ctx: Ctx, rows: list[dict[str, Any]]) -> int:
    """How many rows the report has (the page's, when only a page was read)."""
    return len(rows) if ctx.rows_total is None else ctx.rows_total


def _teller_pivot(ctx: Ctx, across: str) -> Built:
    label = ctx.labels.ctype if across == "ctype" else ctx.labels.queue
    cols, rows, total, series = _pivot(ctx, ["branch", "teller"], across, "served", label,
                                       tellers=True, paged=True)
    chart = Chart("bar", "柜员办理客户数 Customers served per teller", "teller_name",
                  tuple(series), stacked=True) if _shown(ctx, rows) <= 60 else None
    return [*BRANCH, *TELLER, *cols], rows, total, chart, ["按办结计数。Counted by services."]


# --- E4: branches ----------------------------------------------------------------------------

SUMMARY_KEYS = ("issued", "served", "no_show", "not_served", "avg_wait", "total_wait",
                "avg_handle", "total_handle", "calls")


def _branch_summary(ctx: Ctx) -> Built:
    rows, total = _table(ctx, ["branch"], SUMMARY_KEYS, paged=("", "", ""))
    return [*BRANCH, *_cols(*SUMMARY_KEYS)], rows, total, None, []


def _branch_business(ctx: Ctx) -> Built:
    keys = (*SUMMARY_KEYS[:4], "avg_wait", "max_wait", "avg_handle", "max_handle", "calls")
    rows, total = _table(ctx, ["branch", "queue"], keys, paged=("", "", ""))
    return [*BRANCH, *QUEUE, *_cols(*keys)], rows, total, None, []


def _branch_types(ctx: Ctx) -> Built:
    cols, rows, total, _ = _pivot(ctx, ["branch"], "ctype", "issued", ctx.labels.ctype,
                                  paged=True)
    return [*BRANCH, *cols], rows, total, None, []


def _hours(ctx: Ctx, by: Sequence[str], keys: Sequence[str]) -> list[dict[str, Any]]:
    return _cube(ctx, ["hour", *by], needs(keys), hourly=True)


def _hour_label(h: int) -> str:
    return f"{h:02d}:00-{h + 1:02d}:00"


def _hourly_arrivals(ctx: Ctx) -> Built:
    keys = ("issued", "served", "avg_wait")
    raw = sorted(_hours(ctx, [], keys), key=lambda r: r["hour"])
    rows = [{"hour": r["hour"], "hours": _hour_label(r["hour"]), **figures(r, keys)}
            for r in raw if r["issued"] or r["served"]]
    total = {"label": "合计 Total", **figures(_sum_rows(raw), keys)}
    cols = [C("hour", "小时", "Hour"), C("hours", "时段", "Hours"),
            *_cols("issued", "served", "avg_wait")]
    chart = Chart("column", "分时段人流量 Hourly arrivals", "hours", ("issued",),
                  y_title="客户数 customers")
    return cols, rows, total, chart, ["按取号时间的小时计。Hour of issue, local time."]


def _hourly_business(ctx: Ctx) -> Built:
    raw = _hours(ctx, ["queue"], ("issued", "served"))
    queues = sorted({r["queue"] for r in raw})
    by_hour: dict[int, dict[str, Any]] = defaultdict(lambda: {"issued": 0, "served": 0})
    for r in raw:
        row = by_hour[r["hour"]]
        row[f"queue:{r['queue']}"] = row.get(f"queue:{r['queue']}", 0) + int(r["issued"])
        row[f"served:{r['queue']}"] = row.get(f"served:{r['queue']}", 0) + int(r["served"])
        row["issued"] += int(r["issued"])
        row["served"] += int(r["served"])
    rows = []
    for h in sorted(by_hour):
        row = {"hour": h, "hours": _hour_label(h)}
        for q in queues:
            row[f"queue:{q}"] = by_hour[h].get(f"queue:{q}", 0)
            row[f"served:{q}"] = by_hour[h].get(f"served:{q}", 0)
        rows.append({**row, "issued": by_hour[h]["issued"], "served": by_hour[h]["served"]})
    cols = [C("hour", "小时", "Hour"), C("hours", "时段", "Hours")]
    cols += [C(f"queue:{q}", f"{ctx.labels.queue(q)}取号", f"{q} issued", "people")
             for q in queues]
    cols += [C(f"served:{q}", f"{ctx.labels.queue(q)}办结", f"{q} served", "people")
             for q in queues]
    cols += _cols("issued", "served")
    total = {"label": "合计 Total", **{c.key: sum(r[c.key] for r in rows) for c in cols[2:]}}
    chart = Chart("column", "分时段业务量 Hourly volume by business", "hours",
                  tuple(f"queue:{q}" for q in queues), stacked=True,
                  y_title="客户数 customers")
    return cols, rows, total, chart, ["取号按取号时间、办结按办结时间计。"
                                      "Issued by hour of issue, served by hour of finish."]


# --- E5: long waits --------------------------------------------------------------------------


def _long_waits(ctx: Ctx) -> Built:
    keys = ("issued", "over15", "over30", "over60", "max_wait")
    rows, total = _table(ctx, ["branch"], keys, keep=lambda r: bool(r["over15"]),
                         paged=("", " HAVING SUM(over15) > 0", "SUM(over15) DESC, branch{c}"))
    rows.sort(key=lambda r: (-r["over15"], r["branch"]))
    return [*BRANCH, *_cols(*keys)], rows, total, None, [
        "含未被叫号、营业结束时仍在等待的客户(取号至日终)。"
        "Includes customers never called (issue to the day's close)."]


def _ticket_rows(ctx: Ctx, extra: str, order: str, extra_args: Sequence[Any] = ()
                 ) -> list[dict[str, Any]]:
    """``rpt_ticket`` rows of the period and scope matching ``extra`` (with
    ``extra_args``), in ``order`` (an index's order: the listing stops after ``limit`` rows
    without sorting them all)."""
    where, args = ticket_where(ctx)
    cur = ctx.store.execute(
        "SELECT branch, day, number, queue_now AS queue, ctype, issued_at, called_at, "
        "long_wait, outcome, teller, win, score, bad, rated_at, wait_s, calls, outcome_at, "
        "outcome_teller, handle_s FROM rpt_ticket "
        f"WHERE {where}{extra} ORDER BY {order} LIMIT ?",
        [*args, *extra_args, ctx.limit + 1])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def ticket_where(ctx: Ctx) -> tuple[str, list[Any]]:
    """``rpt_ticket``'s conditions for the period and scope (the business a ticket is in
    now, after transfers), and their arguments."""
    first, last = ctx.period.days
    scope_sql, scope_args = ctx.scope.where(queue=False, ctype=False)
    queue_sql, queue_args = Scope(queues=ctx.scope.queues, ctypes=ctx.scope.ctypes).where()
    queue_sql = queue_sql.replace("queue IN", "queue_now IN")
    return (f"day >= ? AND day <= ?{scope_sql}{queue_sql}",
            [first, last, *scope_args, *queue_args])


def _clock(ts: float | None, ctx: Ctx) -> str | None:
    if ts is None:
        return None
    tz = report_timezone(ctx.store)
    return dt.datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S")


def _truncated(rows: list[dict[str, Any]], ctx: Ctx) -> list[str]:
    if len(rows) > ctx.limit:
        del rows[ctx.limit:]
        return [f"只列出前 {ctx.limit} 条。Only the first {ctx.limit} rows are listed."]
    return []


def _long_wait_tickets(ctx: Ctx) -> Built:
    raw = _ticket_rows(ctx, " AND long_wait IS NOT NULL", "branch, day, issued_at")
    notes = _truncated(raw, ctx)
    rows = []
    for r in raw:
        wait = r["long_wait"]
        rows.append(_named(ctx, {
            "branch": r["branch"], "day": r["day"], "number": r["number"],
            "queue": r["queue"], "ctype": r["ctype"], "issued_at": _clock(r["issued_at"], ctx),
            "called_at": _clock(r["called_at"], ctx), "wait": _minutes(wait),
            "outcome": r["outcome"] or "waiting"}))
    cols = [*BRANCH, C("day", "日期", "Day"), C("number", "号码", "Ticket"), *QUEUE, *CTYPE,
            C("issued_at", "取号时间", "Issued at"), C("called_at", "叫号时间", "Called at"),
            C("wait", "等待时间", "Wait", "min"), C("outcome", "结果", "Outcome")]
    return cols, rows, None, None, ["等待超过15分钟的客户。Customers who waited over 15 min.",
                                    *notes]


# --- C4: ratings -----------------------------------------------------------------------------


def _rating_cube(ctx: Ctx, by: Sequence[str]) -> list[dict[str, Any]]:
    table = RATING_TABLES[ctx.period.kind]
    where, args = _period_sql(ctx.period)
    scope_sql, scope_args = ctx.scope.where()
    dims = ", ".join(by)
    cur = ctx.store.execute(
        f"SELECT {dims}, score, SUM(n) AS n, SUM(bad) AS bad FROM {table} "
        f"WHERE {where}{scope_sql} GROUP BY {dims}, score", [*args, *scope_args])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _satisfaction(ctx: Ctx, by: Sequence[str]) -> Built:
    if ctx.page is not None:
        return _satisfaction_page(ctx, by)
    raw = _rating_cube(ctx, by)
    scores = sorted({int(r["score"]) for r in raw} | set(ctx.labels.levels))
    blank = {f"score:{s}": 0 for s in scores}
    grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in raw:
        key = tuple(r[d] for d in by)
        row = grouped.get(key)
        if row is None:
            row = grouped[key] = {**_dims(r, by), **blank, "rated": 0, "satisfied": 0,
                                  "rating_bad": 0}
        n, score = int(r["n"]), int(r["score"])
        row[f"score:{score}"] += n
        row["rated"] += n
        if score >= SATISFIED_FROM:
            row["satisfied"] += n
        row["rating_bad"] += int(r["bad"])
    rows = []
    for key in sorted(grouped):
        row = grouped[key]
        row["satisfaction"] = _pct(row["satisfied"], row["rated"])
        row["bad_pct"] = _pct(row["rating_bad"], row["rated"])
        rows.append(_named(ctx, row))
    level_cols = [C(f"score:{s}", ctx.labels.level(s), f"score {s}", "times") for s in scores]
    sums = {c.key: sum(r[c.key] for r in rows)
            for c in [*level_cols, *_cols("rated", "satisfied", "rating_bad")]}
    return _satisfied(ctx, by, level_cols, rows, sums)


def _satisfied(ctx: Ctx, by: Sequence[str], level_cols: list[Column],
               rows: list[dict[str, Any]], sums: dict[str, Any]) -> Built:
    total = {"label": "合计 Total", **sums,
             "satisfaction": _pct(sums["satisfied"], sums["rated"]),
             "bad_pct": _pct(sums["rating_bad"], sums["rated"])}
    cols = [*level_cols, *_cols("rated", "satisfied", "satisfaction", "rating_bad", "bad_pct")]
    category = "teller_name" if "teller" in by else "branch_name"
    chart = Chart("bar", "满意率 Satisfaction", category, ("satisfaction",),
                  y_title="%") if _shown(ctx, rows) <= 60 else None
    notes = [f"满意 = 评分 ≥ {SATISFIED_FROM}(满意、非常满意);满意率 = 满意数 / 评价总数。"
             f"Satisfied = score {SATISFIED_FROM} or more."]
    return cols, rows, total, chart, notes


def _satisfaction_page(ctx: Ctx, by: Sequence[str]) -> Built:
    """:func:`_satisfaction`'s page: a column per score summed by the database.

    The columns are the rating levels and any other score rated in the period: the page
    is read with the levels' columns and a count of the other scores' rows, and read
    again with those scores' columns only when there are any (a level set changed), so
    a page is usually one pass over the period's ratings, not two."""
    table = RATING_TABLES[ctx.period.kind]
    levels = sorted(ctx.labels.levels)
    got = _scores_page(ctx, by, table, levels, others=True) if levels else None
    if got is None:
        found = {int(s) for s in _distinct(ctx, table, "score")}
        got = _scores_page(ctx, by, table, sorted(found | set(levels)), others=False)
    assert got is not None
    scores, raw, sums = got
    rows = []
    for row in raw:
        row["satisfaction"] = _pct(row["satisfied"], row["rated"])
        row["bad_pct"] = _pct(row["rating_bad"], row["rated"])
        rows.append(_named(ctx, row))
    level_cols = [C(f"score:{s}", ctx.labels.level(s), f"score {s}", "times") for s in scores]
    return _satisfied(ctx, by, level_cols, rows, sums)


def _scores_page(ctx: Ctx, by: Sequence[str], table: str, scores: list[int], *,
                 others: bool) -> tuple[list[int], list[dict[str, Any]], dict[str, Any]] | None:
    """The page with a column per score of ``scores``; None if ``others`` (count the rows
    of other scores) found some."""
    cells: list[Cell] = [(f"s{i}", "SUM(CASE WHEN score = ? THEN n ELSE 0 END)", [s], "SUM")
                         for i, s in enumerate(scores)]
    cells += [("rated", "SUM(n)", [], "SUM"),
              ("satisfied", f"SUM(CASE WHEN score >= {SATISFIED_FROM} THEN n ELSE 0 END)",
               [], "SUM"),
              ("rating_bad", "SUM(bad)", [], "SUM")]
    if others:
        cells.append(("other", f"SUM(CASE WHEN score IN ({', '.join('?' * len(scores))}) "
                               "THEN 0 ELSE 1 END)", list(scores), "SUM"))
    raw, sums, ctx.rows_total = _page(ctx, by, cells, table=table)
    if sums.pop("other", 0):
        return None
    names = {f"s{i}": f"score:{s}" for i, s in enumerate(scores)}
    rows = [{names.get(k, k): v for k, v in r.items() if k != "other"} for r in raw]
    return scores, rows, {names.get(k, k): v for k, v in sums.items()}


def _satisfaction_tellers(ctx: Ctx) -> Built:
    cols, rows, total, chart, notes = _satisfaction(ctx, ["branch", "teller"])
    return [*BRANCH, *TELLER, *cols], rows, total, chart, notes


def _satisfaction_branches(ctx: Ctx) -> Built:
    cols, rows, total, chart, notes = _satisfaction(ctx, ["branch"])
    return [*BRANCH, *cols], rows, total, chart, notes


def _rating_flow(ctx: Ctx) -> Built:
    raw = _ticket_rows(ctx, " AND score IS NOT NULL", "branch, day, rated_at")
    notes = _truncated(raw, ctx)
    rows = [_named(ctx, {
        "branch": r["branch"], "rated_at": _clock(r["rated_at"], ctx), "window": r["win"],
        "teller": r["teller"] or "", "number": r["number"], "queue": r["queue"],
        "ctype": r["ctype"], "score": r["score"], "level": ctx.labels.level(int(r["score"])),
        "bad": "差评 bad" if r["bad"] else ""}) for r in raw]
    cols = [*BRANCH, C("rated_at", "评价时间", "Rated at"), C("window", "窗口", "Window"),
            *TELLER, C("number", "号码", "Ticket"), *QUEUE, *CTYPE,
            C("score", "评分", "Score"), C("level", "评价", "Level"), C("bad", "差评", "Bad")]
    return cols, rows, None, None, notes


# --- I5: appointments and the staff search by 工号 -------------------------------------------

APPOINTMENT_COLUMNS = [
    C("day", "日期", "Day"), *BRANCH, *QUEUE,
    C("channel", "渠道代码", "Channel code"), C("channel_name", "预约渠道", "Channel"),
    C("booked", "预约总数", "Booked", "people"),
    C("redeemed", "已兑号", "Redeemed", "people"),
    C("no_show", "爽约", "No-show", "people"),
    C("cancelled", "已取消", "Cancelled", "people"),
    C("pending", "待兑号", "Still to come", "people"),
    C("redeemed_pct", "兑号率", "Redeemed, share", "pct"),
    C("no_show_pct", "爽约率", "No-show, share", "pct"),
]
BOOKING_COUNTS = ("booked", "redeemed", "no_show", "cancelled", "pending")


def _appointments(ctx: Ctx) -> Built:
    """Bookings by day, branch, business and channel (:mod:`central.reports.bookings`)."""
    from .bookings import CHANNELS, NOTES, count_bookings

    first, last = ctx.period.days
    scope_sql, scope_args = ctx.scope.where(ctype=False, alias="b")
    raw, whole = count_bookings(ctx.store, first, last, _today(ctx), scope_sql, scope_args,
                                ctx.limit + 1)
    notes = _truncated(raw, ctx)
    rows = [_named(ctx, {"day": r["day"], "branch": r["branch"], "queue": r["queue"],
                         "channel": r["channel"],
                         "channel_name": CHANNELS.get(r["channel"], r["channel"]),
                         **_booking_figures(r)}) for r in raw]
    if ctx.scope.ctypes is not None:
        notes.append("预约不分客户类型,客户类型筛选不适用。"
                     "Bookings have no customer type: that filter does not apply.")
    total = {"label": "合计 Total", **_booking_figures(whole)}
    return APPOINTMENT_COLUMNS, rows, total, None, [*NOTES, *notes]


def _booking_figures(r: dict[str, Any]) -> dict[str, Any]:
    kept = r["booked"] - r["cancelled"]
    return {**{k: r[k] for k in BOOKING_COUNTS}, "redeemed_pct": _pct(r["redeemed"], kept),
            "no_show_pct": _pct(r["no_show"], kept)}


def _today(ctx: Ctx) -> str:
    tz = report_timezone(ctx.store)
    now = dt.datetime.now(tz) if ctx.now is None else dt.datetime.fromtimestamp(ctx.now, tz)
    return now.date().isoformat()


STAFF_COLUMNS = [
    *BRANCH, C("day", "日期", "Day"), C("number", "号码", "Ticket"), *QUEUE, *CTYPE,
    C("window", "窗口", "Window"), C("teller", "工号", "Staff number"),
    C("teller_name", "柜员", "Teller"),
    C("issued_at", "取号时间", "Issued at"), C("called_at", "首次叫号时间", "First called at"),
    C("done_at", "结束时间", "Done at"), C("wait", "等待时间", "Wait", "min"),
    C("handle", "办理时间", "Handling time", "min"), C("calls", "呼叫次数", "Calls", "times"),
    C("outcome", "结果代码", "Outcome code"), C("outcome_name", "办理结果", "Outcome"),
    C("score", "评分", "Score"), C("level", "评价", "Rating"),
]


def _teller_services(ctx: Ctx) -> Built:
    """One teller's tickets (:mod:`central.reports.staff`) in branch, day, issue order (at
    most ``limit``), a total row and the whole period in a note; asked without a 工号, no
    rows and a note saying to give one."""
    from .staff import OUTCOME_NAMES, said, tally, teller_condition

    if not ctx.teller:
        return STAFF_COLUMNS, [], None, None, [
            "请输入柜员工号查询。Give a staff number (teller=…)."]
    cond, args = teller_condition(ctx.teller, ctx.outcome)
    raw = _ticket_rows(ctx, cond, "branch, day, issued_at", args)
    notes = _truncated(raw, ctx)
    rows = []
    for r in raw:
        outcome, score = r["outcome"] or "", r["score"]
        rows.append(_named(ctx, {
            "branch": r["branch"], "day": r["day"], "number": r["number"],
            "queue": r["queue"], "ctype": r["ctype"], "window": r["win"],
            "teller": ctx.teller, "issued_at": _clock(r["issued_at"], ctx),
            "called_at": _clock(r["called_at"], ctx),
            "done_at": _clock(r["outcome_at"], ctx) if outcome else None,
            "wait": _minutes(r["wait_s"]),
            "handle": _minutes(r["handle_s"]) if outcome == "served" else None,
            "calls": int(r["calls"] or 0), "outcome": outcome or "open",
            "outcome_name": OUTCOME_NAMES.get(outcome, outcome), "score": score,
            "level": ctx.labels.level(int(score)) if score is not None else None}))
    where, where_args = ticket_where(ctx)
    whole = tally(ctx.store, where + cond, [*where_args, *args], SATISFIED_FROM)
    total = {"label": "合计 Total", "calls": whole["calls"],
             "handle": round(whole["handle_sum"] / 60.0, 2)}
    return STAFF_COLUMNS, rows, total, None, [said(ctx.teller, ctx.outcome, whole), *notes]


# --- F5: data quality ------------------------------------------------------------------------


def _data_quality(ctx: Ctx) -> Built:
    from .quality import data_quality

    found = data_quality(ctx.store, ctx.period, ctx.scope, ctx.now, ctx.limit)
    notes = _truncated(found, ctx)
    rows = [_named(ctx, r) for r in found]
    cols = [C("day", "日期", "Day"), *BRANCH, C("status", "状态", "Status"),
            C("status_name", "说明", "Meaning"), C("problems", "差异", "Differences")]
    return cols, rows, None, None, [
        "no_data 没有上传数据;no_totals 未上传总量;mismatch 总量不一致。", *notes]


REPORTS: dict[str, ReportSpec] = {s.id: s for s in [
    ReportSpec("wait-by-type", "客户平均等待时间及分布(按客户类型)",
               "Average wait and wait distribution by customer type", "E1", _wait_by_type),
    ReportSpec("business-by-type", "客户办理业务类型统计", "Businesses by customer type", "E2",
               _business_by_type),
    ReportSpec("tellers", "柜员业务办理情况综合统计", "Handling time and calls per teller", "E3",
               _tellers),
    ReportSpec("teller-types", "柜员业务办理客户情况统计", "Customer types per teller", "E3",
               lambda ctx: _teller_pivot(ctx, "ctype")),
    ReportSpec("teller-business", "柜员业务办理类型统计", "Businesses per teller", "E3",
               lambda ctx: _teller_pivot(ctx, "queue")),
    ReportSpec("branch-summary", "网点业务办理情况统计", "Branch summary", "E4",
               _branch_summary),
    ReportSpec("branch-business", "网点各类业务等待与办理时间统计",
               "Wait and handling time by business, per branch", "E4", _branch_business),
    ReportSpec("branch-types", "网点客户类型分析统计", "Customer types per branch", "E4",
               _branch_types),
    ReportSpec("hourly-arrivals", "网点分时段人流量分析统计", "Hourly arrivals", "E4",
               _hourly_arrivals),
    ReportSpec("hourly-business", "网点分时段业务量分析统计", "Hourly volume by business",
               "E4", _hourly_business),
    ReportSpec("long-waits", "超长等待(15/30/60分钟以上)按网点列表",
               "Waits over 15/30/60 minutes by branch", "E5", _long_waits),
    ReportSpec("long-wait-tickets", "超长等待客户明细", "Customers who waited over 15 minutes",
               "E5", _long_wait_tickets),
    ReportSpec("rating-flow", "评价数据流水", "Rating flow", "C4", _rating_flow),
    ReportSpec("satisfaction-tellers", "单个柜员满意度", "Satisfaction per teller", "C4",
               _satisfaction_tellers),
    ReportSpec("satisfaction-branches", "整体满意度(按网点)", "Satisfaction per branch", "C4",
               _satisfaction_branches),
    ReportSpec("data-quality", "数据异常网点(未上传、不准确)",
               "Branches with missing or disagreeing data", "F5", _data_quality),
    ReportSpec("appointments", "预约排队服务信息统计表",
               "Appointments: booked, redeemed, no-show, cancelled", "I5", _appointments),
    ReportSpec("teller-services", "按柜员工号查询办理情况",
               "A teller's services by staff number (工号)", "I5", _teller_services),
]}


def check_report(report_id: str) -> ReportSpec:
    """The report's spec; :class:`ScopeError` naming the known ones if there is none."""
    spec = REPORTS.get(report_id)
    if spec is None:
        raise ScopeError(f"no report {report_id!r}; known: {', '.join(REPORTS)}")
    return spec
