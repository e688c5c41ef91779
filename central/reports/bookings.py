"""Appointment statistics (SPEC I5, seed 预约排队服务信息统计表): the bookings made for a
period's days — redeemed, no-show, cancelled, still to come — counted by day, branch,
business and channel (web, SMS, WeChat: the booking's ``channel``).

Read from the ``bookings`` table (:mod:`central.appointments`) and, for redemption, from
``rpt_ticket.appointment`` — the booking a ticket issued at the box redeemed, kept at
ingest (:mod:`central.store.summary`) — so a booking counts as redeemed as soon as its
branch's events arrive, whether or not anybody has looked at it since. The report around
these counts is ``appointments`` in :mod:`central.reports.catalog`; definitions:
docs/reports.md ("Appointments and staff by 工号").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..store.reader import Reader

__all__ = ["CHANNELS", "NOTES", "count_bookings"]

CHANNELS = {"web": "网页 Web", "sms": "短信 SMS", "wechat": "微信 WeChat"}
"""Names of the booking channels; a channel not listed shows as its id."""

_REDEEMED = ("(b.ticket IS NOT NULL OR EXISTS (SELECT 1 FROM rpt_ticket t "
             "WHERE t.appointment = b.id))")
_COUNTS = (
    "COUNT(*) AS booked, "
    "SUM(CASE WHEN b.state = 'cancelled' THEN 1 ELSE 0 END) AS cancelled, "
    f"SUM(CASE WHEN b.state <> 'cancelled' AND {_REDEEMED} THEN 1 ELSE 0 END) AS redeemed, "
    f"SUM(CASE WHEN b.state <> 'cancelled' AND NOT {_REDEEMED} AND b.day < ? THEN 1 ELSE 0 "
    "END) AS no_show")
NOTES = [
    "预约总数含之后取消的预约;兑号 = 在网点凭预约取号;"
    "爽约 = 预约当日结束仍未兑号(当日及以后为待兑号);兑号率、爽约率以未取消的预约为基数。",
    "Booked includes bookings later cancelled; redeemed = a ticket taken for it at the "
    "branch; no-show = not redeemed by the end of its day (until then: still to come); "
    "shares are of the bookings not cancelled.",
]


def count_bookings(store: Reader, first: str, last: str, today: str, scope_sql: str,
                   scope_args: list[Any], limit: int
                   ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Counts of the bookings for days ``first``..``last`` in the scope (conditions on
    ``b.``): up to ``limit`` rows by day, branch, business and channel (in that order), and
    the whole period's. Each has ``booked``, ``cancelled``, ``redeemed``, ``no_show`` (a
    booking of a day before ``today`` never redeemed) and ``pending`` (the rest)."""
    where = f"FROM bookings b WHERE b.day >= ? AND b.day <= ?{scope_sql}"
    args = [today, first, last, *scope_args]
    rows = _dicts(store.execute(
        f"SELECT b.day, b.branch, b.queue, b.channel, {_COUNTS} {where} "
        "GROUP BY b.day, b.branch, b.queue, b.channel "
        "ORDER BY b.day, b.branch, b.queue, b.channel LIMIT ?", [*args, limit]))
    whole = _dicts(store.execute(f"SELECT {_COUNTS} {where}", args))[0]
    return [_counts(r) for r in rows], _counts(whole)


def _counts(r: dict[str, Any]) -> dict[str, Any]:
    out = {**r, **{k: int(r[k] or 0) for k in ("booked", "cancelled", "redeemed", "no_show")}}
    out["pending"] = out["booked"] - out["cancelled"] - out["redeemed"] - out["no_show"]
    return out


def _dicts(cur: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
