"""A simulated day's report: JSON-ready dict, Excel workbook and PNG chart.

Column headers are Chinese first, English after (the centre's reports read the same).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .day import DayRun
from .measures import Period, day_measures, utilisation

__all__ = ["day_report", "write_excel", "write_png", "write_tables"]

Row = Sequence[Any]
Sheet = tuple[str, Sequence[str], Sequence[Row]]


def day_report(run: DayRun, every_s: float = 300.0) -> dict[str, Any]:
    """Everything measured about ``run`` (see :mod:`queueing.measures` for definitions)."""
    period = Period(run.t0, run.t0 + 86400, run.config.tz)
    measures = day_measures(run.events, period, run.scenario.target_wait_s, every_s)
    return {
        "branch": {"code": run.config.branch.code, "name": run.config.branch.name,
                   "timezone": run.config.branch.timezone},
        "date": run.scenario.date.isoformat(),
        "seed": run.seed,
        "expected_customers": round(sum(s.expected for s in run.scenario.arrivals), 1),
        "arrived": len(run.customers),
        "turned_away": dict(run.turned_away),
        "utilisation": _round(utilisation(measures["windows"])),
        "window_hours": run.scenario.staffing.window_hours(),
        **measures,
        "engine": {"commands": run.commands, "events": len(run.events),
                   "wall_s": round(run.wall_s, 4)},
    }


def _tz(report: Mapping[str, Any]) -> dt.tzinfo:
    return ZoneInfo(report["branch"].get("timezone", "Asia/Shanghai"))


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


# --- Excel ------------------------------------------------------------------------------


def write_tables(path: str | Path, sheets: Sequence[Sheet]) -> Path:
    """Write ``(title, headers, rows)`` sheets to an .xlsx file."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    if wb.active is not None:
        wb.remove(wb.active)
    for title, headers, rows in sheets:
        ws = wb.create_sheet(title[:31])
        ws.append(list(headers))
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append([_cell(v) for v in row])
        for i, h in enumerate(headers):
            ws.column_dimensions[ws.cell(1, i + 1).column_letter].width = max(10, len(h) + 2)
        ws.freeze_panes = "A2"
    path = Path(path)
    wb.save(path)
    return path


def _cell(v: Any) -> Any:
    if isinstance(v, dict | list | tuple):
        return str(v)
    return v


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 2)


_WAIT_HEADERS = (
    "已叫号 Called", "未服务 Never called", "平均等待(分) Mean wait (min)",
    "中位等待(分) P50 (min)", "P90等待(分) P90 (min)", "P95等待(分) P95 (min)",
    "最长等待(分) Max (min)", "目标内比例 Within target", "<2分 <2 min", "2-5分 2-5 min",
    "5-10分 5-10 min", ">10分 >10 min", ">15分 >15 min", ">30分 >30 min", ">60分 >60 min",
)


def _wait_row(s: Mapping[str, Any]) -> list[Any]:
    return [
        s["called"], s["never_called"], _minutes(s["mean_wait_s"]), _minutes(s["p50_wait_s"]),
        _minutes(s["p90_wait_s"]), _minutes(s["p95_wait_s"]), _minutes(s["max_wait_s"]),
        s["within_target"], *s["bands"].values(), *s["over_min"].values(),
    ]


def report_sheets(report: Mapping[str, Any]) -> list[Sheet]:
    """The day report as sheets (summary, by business, type, hour, windows, queue, ratings)."""
    w = report["wait"]
    summary = [
        ("网点 Branch", f"{report['branch']['code']} {report['branch']['name']}"),
        ("日期 Date", report["date"]), ("随机种子 Seed", report["seed"]),
        ("到达客户 Arrived", report["arrived"]), ("取号 Tickets", report["customers"]),
        ("拒绝取号 Turned away", sum(report["turned_away"].values())),
        ("办结 Served", report["served"]), ("弃号 No-show", report["no_show"]),
        ("未服务 Not served", report["not_served"]),
        ("平均等待(分) Mean wait (min)", _minutes(w["mean_wait_s"])),
        ("P90等待(分) P90 wait (min)", _minutes(w["p90_wait_s"])),
        ("目标(分) Target (min)", report["target_wait_s"] / 60),
        ("目标内比例 Within target", w["within_target"]),
        ("窗口利用率 Utilisation", report["utilisation"]),
        ("窗口小时 Window-hours", report["window_hours"]),
        ("满意率 Satisfaction", report["ratings"]["satisfaction"]),
    ]
    handle = report["handle"]
    ql = report["queue_length"]
    start = dt.datetime.fromtimestamp(ql["start"], _tz(report))
    queues = list(ql["by_queue"])
    return [
        ("概要 Summary", ["项目 Item", "值 Value"], summary),
        ("按业务 By business", ["业务 Business", *_WAIT_HEADERS, "平均办理(分) Mean handle (min)"],
         [[q, *_wait_row(s), _minutes(handle.get(q, {}).get("mean_handle_s"))]
          for q, s in report["by_queue"].items()]),
        ("按客户类型 By type", ["客户类型 Customer type", *_WAIT_HEADERS],
         [[t, *_wait_row(s)] for t, s in report["by_customer_type"].items()]),
        ("按小时 By hour", ["取号小时 Hour issued", *_WAIT_HEADERS, "平均排队 Mean waiting"],
         [[h, *_wait_row(s), ql["hourly_mean"].get(h)] for h, s in report["by_hour"].items()]),
        ("窗口 Windows", ["窗口 Window", "登录(时) Open (h)", "忙碌(时) Busy (h)",
                         "利用率 Utilisation", "办结 Served"],
         [[n, round(m["open_s"] / 3600, 2), round(m["busy_s"] / 3600, 2), m["utilisation"],
           m["served"]] for n, m in report["windows"].items()]),
        ("排队长度 Queue length", ["时间 Time", "合计 Total", *queues],
         [[(start + dt.timedelta(seconds=i * ql["every_s"])).strftime("%H:%M"), total,
           *[ql["by_queue"][q][i] for q in queues]] for i, total in enumerate(ql["total"])]),
        ("评价 Ratings", ["评分 Score", "次数 Count"],
         list(report["ratings"]["scores"].items())),
    ]


def write_excel(report: Mapping[str, Any], path: str | Path) -> Path:
    return write_tables(path, report_sheets(report))


# --- PNG --------------------------------------------------------------------------------

_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
            (140, 86, 75), (227, 119, 194), (127, 127, 127))


def write_png(report: Mapping[str, Any], path: str | Path, size: tuple[int, int] = (1000, 640)
              ) -> Path:
    """Queue length over the day (per business and total) above mean wait per hour."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=13)
    w, h = size
    ql = report["queue_length"]
    series = {"total": ql["total"], **ql["by_queue"]}
    first, last = _active_span(ql["total"])
    top = (60, 40, w - 140, h // 2 + 10)
    draw.text((60, 12), f"Waiting tickets, {report['branch']['code']} {report['date']} "
                        f"(seed {report['seed']})", fill="black", font=font)
    ymax = max(1, *(max(v[first:last + 1], default=0) for v in series.values()))
    _axes(draw, top, font, ymax, first, last, ql["every_s"], ql["start"], _tz(report))
    for i, (name, values) in enumerate(series.items()):
        colour = (0, 0, 0) if name == "total" else _COLOURS[i % len(_COLOURS)]
        pts = [_xy(top, k - first, last - first, v, ymax) for k, v in
               enumerate(values[first:last + 1], start=first)]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2 if name == "total" else 1)
        draw.line([(w - 120, 50 + i * 18), (w - 100, 50 + i * 18)], fill=colour, width=3)
        draw.text((w - 95, 43 + i * 18), name, fill="black", font=font)
    _wait_bars(draw, (60, h // 2 + 70, w - 140, h - 40), font, report)
    path = Path(path)
    img.save(path)
    return path


def _active_span(total: Sequence[int]) -> tuple[int, int]:
    busy = [i for i, v in enumerate(total) if v]
    if not busy:
        return 0, max(0, len(total) - 1)
    return max(0, busy[0] - 2), min(len(total) - 1, busy[-1] + 2)


def _xy(box: tuple[int, int, int, int], i: int, n: int, v: float, ymax: float
        ) -> tuple[float, float]:
    x0, y0, x1, y1 = box
    return x0 + (x1 - x0) * i / max(1, n), y1 - (y1 - y0) * v / ymax


def _axes(draw: Any, box: tuple[int, int, int, int], font: Any, ymax: float, first: int,
          last: int, every_s: float, start: float, tz: dt.tzinfo) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline="black")
    for k in range(5):
        v = ymax * k / 4
        y = y1 - (y1 - y0) * k / 4
        draw.text((x0 - 35, y - 7), f"{v:.0f}", fill="black", font=font)
    step = max(1, int(3600 // every_s))
    for i in range(first, last + 1):
        if i % step == 0:
            x = x0 + (x1 - x0) * (i - first) / max(1, last - first)
            label = dt.datetime.fromtimestamp(start + i * every_s, tz).strftime("%H:%M")
            draw.line([(x, y1), (x, y1 + 4)], fill="black")
            draw.text((x - 15, y1 + 6), label, fill="black", font=font)


def _wait_bars(draw: Any, box: tuple[int, int, int, int], font: Any,
               report: Mapping[str, Any]) -> None:
    x0, y0, x1, y1 = box
    hours = report["by_hour"]
    draw.text((x0, y0 - 22), "Mean wait (min) by hour of issue; line: target", fill="black",
              font=font)
    draw.rectangle(box, outline="black")
    if not hours:
        return
    waits = {hh: (s["mean_wait_s"] or 0) / 60 for hh, s in hours.items()}
    target = report["target_wait_s"] / 60
    ymax = max(target * 1.2, *waits.values(), 1)
    width = (x1 - x0) / len(waits)
    for i, (hh, v) in enumerate(waits.items()):
        bx = x0 + i * width
        draw.rectangle([bx + 3, y1 - (y1 - y0) * v / ymax, bx + width - 3, y1],
                       fill=(214, 39, 40) if v > target else (31, 119, 180))
        draw.text((bx + width / 2 - 8, y1 + 4), hh, fill="black", font=font)
        draw.text((bx + width / 2 - 12, y1 - (y1 - y0) * v / ymax - 16), f"{v:.1f}",
                  fill="black", font=font)
    ty = y1 - (y1 - y0) * target / ymax
    draw.line([(x0, ty), (x1, ty)], fill=(44, 160, 44), width=2)
