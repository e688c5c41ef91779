"""The staff search by 工号 (SPEC I5; seed: 管理员同时可以按办理客服的工号进行查询,
并查看用户对该客服的评价信息。同时可以筛选出已办理和未办理业务的用户): which of ``rpt_ticket``'s
tickets are a teller's, and the period in one line. The report around them is
``teller-services`` in :mod:`central.reports.catalog`.

Read from ``rpt_ticket`` (one row per ticket, kept at ingest by
:mod:`central.store.summary`) through its teller indexes (migration 0069). Whose ticket
it is:

* **served** (办结): finished by the teller (``outcome_teller``);
* **no-show** (弃号): marked a no-show by the teller (a call-back undoes it);
* **not served** (未办理): called last by the teller (``teller``) and still open when the
  day closed — held, or left the window unfinished;
* **open** (未办结, the day not closed yet): called last by the teller, not finished.

``not_served`` filters the no-shows and the not served; ``served`` the served.
docs/reports.md ("Appointments and staff by 工号").
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .scope import ScopeError

if TYPE_CHECKING:
    from ..store.reader import Reader

__all__ = ["OUTCOMES", "OUTCOME_NAMES", "TELLER_ID", "said", "tally", "teller_condition"]

TELLER_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
"""A 工号 as the boxes send it (a teller's login id)."""

OUTCOME_NAMES = {"served": "办结 served", "no_show": "弃号 no-show",
                 "not_served": "未办理 not served", "": "未办结 open"}
# filter -> SQL over rpt_ticket, with one ? per teller placeholder
OUTCOMES = {
    "all": "((outcome_teller = ? AND outcome IN ('served', 'no_show')) "
           "OR (teller = ? AND outcome IN ('not_served', '')))",
    "served": "(outcome_teller = ? AND outcome = 'served')",
    "not_served": "((outcome_teller = ? AND outcome = 'no_show') "
                  "OR (teller = ? AND outcome = 'not_served'))",
}
SHOWN = {"all": "全部 all", "served": "已办理 served", "not_served": "未办理 not served"}


def teller_condition(teller: str, outcome: str) -> tuple[str, list[str]]:
    """``rpt_ticket``'s condition (``AND …``) for ``teller``'s tickets under the filter
    ``outcome`` (all, served, not_served), and its arguments.

    Raises:
        ScopeError: a malformed 工号, or an unknown filter.
    """
    if not TELLER_ID.match(teller):
        raise ScopeError("teller must be a staff number (工号: letters, digits, _ or -)")
    if outcome not in OUTCOMES:
        raise ScopeError(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome[:20]!r}")
    cond = OUTCOMES[outcome]
    return f" AND {cond}", [teller] * cond.count("?")


def tally(store: Reader, where: str, args: list[Any], satisfied_from: int
          ) -> dict[str, Any]:
    """Counts and sums over every ticket matching ``where`` (not only the rows listed):
    per outcome, calls, handling of the served, waits, ratings."""
    cur = store.execute(
        "SELECT outcome, COUNT(*), SUM(calls), SUM(handle_s), COUNT(wait_s), SUM(wait_s), "
        f"COUNT(score), SUM(score), SUM(CASE WHEN score >= {int(satisfied_from)} THEN 1 "
        f"ELSE 0 END) FROM rpt_ticket WHERE {where} GROUP BY outcome", args)
    out: dict[str, Any] = {"n": {}, "calls": 0, "handle_sum": 0.0, "wait_n": 0,
                           "wait_sum": 0.0, "rated": 0, "score_sum": 0, "satisfied": 0}
    for outcome, n, calls, handle, wait_n, wait_sum, rated, score_sum, satisfied in cur:
        out["n"][outcome or ""] = int(n)
        out["calls"] += int(calls or 0)
        out["handle_sum"] += float(handle or 0.0) if outcome == "served" else 0.0
        out["wait_n"] += int(wait_n or 0)
        out["wait_sum"] += float(wait_sum or 0.0)
        out["rated"] += int(rated or 0)
        out["score_sum"] += int(score_sum or 0)
        out["satisfied"] += int(satisfied or 0)
    return out


def said(teller: str, outcome: str, s: dict[str, Any]) -> str:
    """The period of a :func:`tally` in one line, Chinese then English."""
    n = s["n"]
    served, no_show, not_served, open_ = (n.get(k, 0) for k in ("served", "no_show",
                                                                 "not_served", ""))
    avg_handle = _ratio(s["handle_sum"] / 60.0, served, 2)
    avg_wait = _ratio(s["wait_sum"] / 60.0, s["wait_n"], 2)
    avg_score = _ratio(s["score_sum"], s["rated"], 2)
    share = _ratio(100.0 * s["satisfied"], s["rated"], 1)
    return (f"工号 {teller}({SHOWN[outcome]}):办结 {served} 人,弃号 {no_show} 人,"
            f"未办理 {not_served} 人,未办结 {open_} 人;平均等待 {_text(avg_wait)} 分钟,"
            f"平均办理 {_text(avg_handle)} 分钟;评价 {s['rated']} 次,平均 {_text(avg_score)} 分,"
            f"满意率 {_text(share, '%')}。 Staff number {teller}: served {served}, no-show "
            f"{no_show}, not served {not_served}, open {open_}; average wait "
            f"{_text(avg_wait)} min, average handling {_text(avg_handle)} min; "
            f"{s['rated']} ratings, average {_text(avg_score)}, satisfied "
            f"{_text(share, '%')}.")


def _ratio(total: float, n: int, digits: int) -> float | None:
    return round(total / n, digits) if n else None


def _text(v: float | None, unit: str = "") -> str:
    return "—" if v is None else f"{v:g}{unit}"
