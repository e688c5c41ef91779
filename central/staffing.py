"""Staffing advice in the back office (SPEC B5/E): how many windows to open, hour by hour.

* ``GET /api/office/staffing?branch=CODE&days=14&target_min=15&level=0.85&seeds=3
  [&date=YYYY-MM-DD]`` — for a branch in the caller's scope: its latest configuration
  version as the centre holds it, its stored events of the ``days`` calendar days before
  ``date`` (default: today at the branch), learned into a day's arrivals and service times
  (:func:`queueing.learn.learn`) and simulated on the real engine until the fewest windows
  per hour serve ``level`` of that hour's customers within ``target_min`` minutes
  (:func:`queueing.staffing.advise_from_history`). JSON: per hour the advised windows,
  expected customers, the share served within the target and whether it is met; the
  total window-hours.
* ``GET /api/office/staffing.csv`` — the same figures as CSV (UTF-8 with BOM).

A branch without a configuration or without events in those days is refused (404/422, in
Chinese and English). The simulation is CPU work: it runs in a thread, and the seeds are
capped so an answer takes seconds.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from common.errors import ConfigError
from controller.config import Config, parse_config
from queueing.staffing import StaffingAdvice, advise_from_history

from . import configs as cf
from .auth import ApiError, Principal
from .deps import ContextDep, Viewer
from .reports.export import safe_row

if TYPE_CHECKING:
    from .context import CentreContext

__all__ = ["advise", "router", "staffing_csv"]

CSV_HEADER = ["小时 Hour", "建议窗口数 Windows", "开放窗口 Open windows",
              "预计客户 Expected customers", "目标内比例 Within target", "达标 Met"]


class StaffingQuery:
    """What the advice is asked for."""

    def __init__(
        self,
        branch: Annotated[str, Query(pattern=r"^\d{4,16}$", description="branch code")],
        days: Annotated[int, Query(ge=1, le=90, description="days of history")] = 14,
        target_min: Annotated[float, Query(gt=0, le=240, description="target wait (min)")
                              ] = 15.0,
        level: Annotated[float, Query(gt=0, le=1, description="share within target")] = 0.85,
        seeds: Annotated[int, Query(ge=1, le=10, description="simulated days per plan")] = 3,
        date: Annotated[dt.date | None, Query(description="the day advised (default: today "
                                                          "at the branch)")] = None,
    ) -> None:
        self.branch, self.days, self.target_min = branch, days, target_min
        self.level, self.seeds, self.date = level, seeds, date


router = APIRouter(tags=["back office"])
"""``/api/office/staffing`` and ``/api/office/staffing.csv``, for a viewer of the branch."""
Asked = Annotated[StaffingQuery, Depends()]


@router.get("/api/office/staffing")
async def staffing(q: Asked, centre: ContextDep, who: Viewer) -> dict[str, Any]:
    """Advised windows per hour (``hours``), ``window_hours`` in total, ``met``."""
    head, advice = await advise(centre, q, who)
    return {**head, **advice.to_json()}


@router.get("/api/office/staffing.csv", response_class=Response)
async def staffing_download(q: Asked, centre: ContextDep, who: Viewer) -> Response:
    head, advice = await advise(centre, q, who)
    name = f"staffing_{q.branch}_{head['date']}.csv"
    return Response(staffing_csv(advice), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def advise(centre: CentreContext, q: StaffingQuery, who: Principal
                 ) -> tuple[dict[str, Any], StaffingAdvice]:
    """The advice for ``q`` (a branch ``who`` sees), with what it was learned from."""
    who.check(q.branch)
    found, now = await centre.read(lambda s: (cf.latest(s, q.branch), s.clock.now()))
    if found is None:
        raise ApiError("not_found", message=f"网点{q.branch}在中心没有配置,无法给出排班建议。",
                       message_en=f"Branch {q.branch} has no configuration at the centre.")
    config = _config(found["body"], q.branch)
    day = q.date or dt.datetime.fromtimestamp(now, config.tz).date()  # the centre's clock
    first, last = day - dt.timedelta(q.days), day - dt.timedelta(1)
    events = await centre.read(lambda s: s.history(q.branch, first.isoformat(),
                                                    last.isoformat()))
    if not any(e.get("type") == "ticket_issued" for e in events):
        raise ApiError("invalid", message=f"网点{q.branch}在{first}至{last}没有取号记录,"
                       "无法学习客流。", message_en=f"Branch {q.branch} has no tickets "
                       f"issued from {first} to {last}: nothing to learn from.")
    advice = await asyncio.to_thread(
        advise_from_history, events, config, day, target_wait_s=q.target_min * 60,
        level=q.level, seeds=tuple(range(1, q.seeds + 1)))
    head = {"branch": q.branch, "date": day.isoformat(), "history": {
        "first_day": first.isoformat(), "last_day": last.isoformat(),
        "events": len(events)}, "config_version": found["version"]}
    return head, advice


def _config(body: dict[str, Any], branch: str) -> Config:
    try:
        return parse_config(dict(body), f"centre:{branch}")
    except ConfigError as exc:  # stored versions were validated; a newer box rule may differ
        raise ApiError("invalid", message=f"网点{branch}的配置无法使用:{exc.key}: {exc.problem}",
                       message_en=f"Branch {branch}'s configuration: {exc.key}: "
                                  f"{exc.problem}") from None


def staffing_csv(advice: StaffingAdvice) -> bytes:
    """The advice as CSV (UTF-8 with BOM, for Excel): one row per hour, then the total."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(safe_row(CSV_HEADER))
    for h in advice.hours:
        w.writerow(safe_row([f"{h['hour']:02d}:00", h["windows"], " ".join(map(str, h["open"])),
                             h["expected_customers"], h["within_target"],
                             "是 yes" if h["met"] else "否 no"]))
    w.writerow(safe_row(["合计 Total", advice.window_hours, "", "", "",
                         "是 yes" if advice.met else "否 no"]))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
