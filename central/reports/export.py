"""A :class:`~central.reports.catalog.Report` as an Excel workbook or a CSV file.

Both write exactly the report's rows and total — the numbers the JSON API returns.

Excel (``.xlsx``, openpyxl): a header block (title in Chinese and English, scope, period,
generated-at, where the definitions are), the table with Chinese-first column headers that
carry their units, the total row, the notes, and a native Excel chart (column or bar)
wherever the report has one — Excel redraws it from the cells, so it stays true if a
user edits a figure.

CSV: UTF-8 with a byte-order mark (Excel then reads the Chinese correctly), one header
row, the rows, the total row; empty cells where a figure does not exist.

Every cell the centre writes to a CSV or a workbook — these reports, the staff's
appointment export (:mod:`central.customers`), the staffing advice (:mod:`central.staffing`)
— passes through :func:`safe_cell`: text that a spreadsheet would run as a formula is
written as text (OWASP "CSV injection"); numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from .catalog import Column, Report

__all__ = ["filename", "safe_cell", "safe_row", "to_csv", "to_xlsx"]

HEADER_ROWS = 6  # title, English title, scope, period, generated at, definitions
MAX_CHART_ROWS = 60  # more categories than this make a chart nobody can read


# The definitions a reader of the workbook needs, in words: the workbook leaves the
# centre, so it cites no file of the software (the full table: docs/reports.md).
DEFINITIONS = ("等待时间 = 第一次叫号 − 取号(重呼不重新计时),办理时间 = 完成 − 最后一次叫号,"
               "单位分钟。 Wait = first call − ticket taken (a recall does not restart it); "
               "handling = finish − last call; in minutes.")


def filename(report: Report, ext: str) -> str:
    """``wait-by-type_day_2026-11-25.xlsx``."""
    return f"{report.id}_{report.period.kind}_{report.period.value}.{ext}"


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a formula
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def safe_cell(value: Any) -> Any:
    """``value`` as a spreadsheet cell that cannot run: text starting with ``= + - @``, a
    tab or a CR gets a leading ``'`` (so ``=cmd|'/c calc'!A1`` is shown, not run); numbers
    (also text that is just a number, such as ``-3.5``) and other text are kept as they are;
    ``None`` is an empty cell."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START) \
            and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_row(values: Any) -> list[Any]:
    """:func:`safe_cell` of each value: one CSV row."""
    return [safe_cell(v) for v in values]


def _total_cells(report: Report) -> list[Any] | None:
    if report.total is None:
        return None
    cells = [report.total.get(c.key) for c in report.columns]
    cells[0] = report.total.get("label", "合计 Total")
    return cells


def to_csv(report: Report) -> bytes:
    """The report as CSV (UTF-8 with BOM)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(safe_row(c.header for c in report.columns))
    for row in report.rows:
        w.writerow(safe_row(row.get(c.key) for c in report.columns))
    total = _total_cells(report)
    if total is not None:
        w.writerow(safe_row(total))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(report: Report) -> bytes:
    """The report as an Excel workbook: header, table, total, notes and a chart."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = report.id[:31]
    head = [
        (report.title, Font(bold=True, size=14)),
        (report.title_en, Font(italic=True)),
        (f"范围 Scope: {report.scope.label}", None),
        (f"期间 Period: {report.period.label} ({report.period.kind} {report.period.value})",
         None),
        (f"生成时间 Generated at: {report.generated_at}", None),
        (f"口径 Definitions ({report.spec}): {DEFINITIONS}", None),
    ]
    for i, (text, font) in enumerate(head, start=1):
        ws.cell(i, 1, text)
        if font is not None:
            ws.cell(i, 1).font = font
    top = HEADER_ROWS + 2
    fill = PatternFill("solid", fgColor="DDEBF7")
    for j, col in enumerate(report.columns, start=1):
        c = ws.cell(top, j, safe_cell(col.header))
        c.font, c.fill = Font(bold=True), fill
        c.alignment = Alignment(wrap_text=True, vertical="center")
        ws.column_dimensions[get_column_letter(j)].width = _width(col)
    for i, row in enumerate(report.rows, start=top + 1):
        for j, col in enumerate(report.columns, start=1):
            _put(ws.cell(i, j), row.get(col.key), col)
    last = top + len(report.rows)
    total = _total_cells(report)
    if total is not None:
        last += 1
        for j, (col, value) in enumerate(zip(report.columns, total, strict=True), start=1):
            _put(ws.cell(last, j), value, col)
            ws.cell(last, j).font = Font(bold=True)
    for k, note in enumerate(report.notes, start=last + 2):
        ws.cell(k, 1, safe_cell(note)).font = Font(italic=True, color="666666")
    ws.freeze_panes = ws.cell(top + 1, 1)
    if report.chart is not None and 0 < len(report.rows) <= MAX_CHART_ROWS:
        _chart(ws, report, top, last + len(report.notes) + 3)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _width(col: Column) -> float:
    return max(10.0, min(28.0, len(col.header) * 0.9))


def _put(cell: Any, value: Any, col: Column) -> None:
    cell.value = None if value is None else safe_cell(value)
    if isinstance(value, float):
        cell.number_format = "0.0" if col.unit == "pct" else "0.00"


def _chart(ws: Any, report: Report, top: int, anchor_row: int) -> None:
    from openpyxl.chart import BarChart, LineChart, Reference

    spec = report.chart
    assert spec is not None
    keys = [c.key for c in report.columns]
    first, last = top + 1, top + len(report.rows)
    chart: Any = LineChart() if spec.kind == "line" else BarChart()
    if spec.kind != "line":
        chart.type = "bar" if spec.kind == "bar" else "col"
        if spec.stacked:
            chart.grouping, chart.overlap = "stacked", 100
    chart.title = spec.title
    chart.y_axis.title = spec.y_title or None
    for key in spec.series:
        col = keys.index(key) + 1
        chart.add_data(Reference(ws, min_col=col, min_row=top, max_row=last),
                       titles_from_data=True)
    cat = keys.index(spec.category) + 1
    chart.set_categories(Reference(ws, min_col=cat, min_row=first, max_row=last))
    chart.width, chart.height = 24, 12
    ws.add_chart(chart, ws.cell(anchor_row, 1).coordinate)
