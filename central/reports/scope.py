"""What a report covers: a period (day, month or year) and an organisation scope.

Organisation codes are prefixes of each other (head office ``1001`` → branch ``100101`` →
sub-branch ``1001010001``), so "an org node and its subtree" is every branch whose code
starts with the node's code. A :class:`Scope` is a set of such prefixes (or everything),
optionally a list of branches, and filters by business (queue) and customer type.

A request's scope is always checked against the prefixes its caller is *allowed* to see
(:func:`resolve_scope`, a required argument): asking for an org outside them raises
:class:`OutOfScope` (HTTP 403), asking for nothing gives exactly the allowed set. No
allowed prefix at all sees nothing; the whole centre is said explicitly
(:data:`EVERYWHERE`), never assumed from a missing value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["EVERYWHERE", "OutOfScope", "Period", "Scope", "ScopeError", "resolve_scope"]

PeriodKind = Literal["day", "month", "year"]
_CODE = re.compile(r"^\d{1,16}$")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
EVERYWHERE: tuple[str, ...] = ("",)
"""The allowed prefixes of a caller who sees the whole centre: the empty prefix, which
every code starts with (the alert thresholds' province node ``''`` included)."""


class ScopeError(ValueError):
    """A period, org code or filter that is not well formed (HTTP 422)."""


class OutOfScope(PermissionError):
    """The org or branch asked for is outside what the caller may see (HTTP 403)."""


@dataclass(frozen=True, slots=True)
class Period:
    """A day (``2026-11-25``), a month (``2026-11``) or a year (``2026``)."""

    kind: PeriodKind
    value: str

    @classmethod
    def parse(cls, kind: str, value: str) -> Period:
        """Check ``value`` against ``kind``; :class:`ScopeError` if it does not fit."""
        formats = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
        if kind not in formats:
            raise ScopeError(f"period must be day, month or year, not {kind!r}")
        try:
            parsed = dt.datetime.strptime(value, formats[kind])
        except (ValueError, TypeError):
            raise ScopeError(f"{value!r} is not a {kind} like "
                             f"{dt.date(2026, 11, 25).strftime(formats[kind])}") from None
        return cls(kind, parsed.strftime(formats[kind]))  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        """``2026年11月25日`` / ``2026年11月`` / ``2026年``."""
        parts = self.value.split("-")
        return "".join(f"{int(p)}{u}" for p, u in zip(parts, "年月日", strict=False))

    @property
    def months(self) -> tuple[str, str]:
        """The first and last month (``YYYY-MM``) of a month or year period."""
        if self.kind == "year":
            return f"{self.value}-01", f"{self.value}-12"
        return self.value[:7], self.value[:7]

    @property
    def days(self) -> tuple[str, str]:
        """The first and last day of the period."""
        if self.kind == "day":
            return self.value, self.value
        first, last = self.months
        y, m = map(int, last.split("-"))
        end = dt.date(y + m // 12, m % 12 + 1, 1) - dt.timedelta(days=1)
        return f"{first}-01", end.isoformat()

    def day_list(self) -> list[str]:
        first, last = (dt.date.fromisoformat(d) for d in self.days)
        return [(first + dt.timedelta(days=i)).isoformat()
                for i in range((last - first).days + 1)]


@dataclass(frozen=True, slots=True)
class Scope:
    """Which branches, businesses and customer types a report counts.

    ``prefixes`` None means every branch; ``branches`` narrows to listed branch codes;
    ``queues`` / ``ctypes`` None means every business / customer type.
    """

    prefixes: tuple[str, ...] | None = None
    branches: tuple[str, ...] | None = None
    queues: tuple[str, ...] | None = None
    ctypes: tuple[str, ...] | None = None

    def covers(self, branch: str) -> bool:
        if self.prefixes is not None and not any(branch.startswith(p) for p in self.prefixes):
            return False
        return self.branches is None or branch in self.branches

    def where(self, *, queue: bool = True, ctype: bool = True, alias: str = ""
              ) -> tuple[str, list[Any]]:
        """SQL conditions (``AND …``) and arguments for the branch, queue, type filters."""
        a = f"{alias}." if alias else ""
        sql: list[str] = []
        args: list[Any] = []
        if self.prefixes is not None:
            if not self.prefixes:
                return " AND 1 = 0", []
            ors = []
            for p in self.prefixes:  # a key range, so an index on branch can seek it
                upper = _after_prefix(p)
                if upper is None:
                    ors.append(f"{a}branch >= ?")
                    args.append(p)
                else:
                    ors.append(f"({a}branch >= ? AND {a}branch < ?)")
                    args += [p, upper]
            sql.append("(" + " OR ".join(ors) + ")")
        for column, values, wanted in (("branch", self.branches, True),
                                       ("queue", self.queues, queue),
                                       ("ctype", self.ctypes, ctype)):
            if values is None or not wanted:
                continue
            if not values:
                return " AND 1 = 0", []
            sql.append(f"{a}{column} IN ({', '.join('?' * len(values))})")
            args.extend(values)
        return "".join(f" AND {s}" for s in sql), args

    def describe(self) -> dict[str, Any]:
        return {"orgs": list(self.prefixes) if self.prefixes is not None else None,
                "branches": list(self.branches) if self.branches is not None else None,
                "queues": list(self.queues) if self.queues is not None else None,
                "customer_types": list(self.ctypes) if self.ctypes is not None else None}

    @property
    def label(self) -> str:
        """Chinese-first, e.g. ``机构 1001, 1002;业务 A;客户类型 vip``."""
        parts = ["全部网点 all branches" if self.prefixes is None
                 else "机构 org " + ", ".join(self.prefixes)]
        if self.branches is not None:
            parts.append("网点 branches " + ", ".join(self.branches))
        if self.queues is not None:
            parts.append("业务 business " + ", ".join(self.queues))
        if self.ctypes is not None:
            parts.append("客户类型 customer type " + ", ".join(self.ctypes))
        return ";".join(parts)


def _after_prefix(prefix: str) -> str | None:
    """The least digit string above every code that starts with ``prefix``:
    ``1001`` → ``1002``, ``1009`` → ``101``; None for ``99…``."""
    kept = prefix.rstrip("9")
    if not kept:
        return None
    return kept[:-1] + chr(ord(kept[-1]) + 1)


def resolve_scope(orgs: Sequence[str] | None = None, branches: Sequence[str] | None = None,
                  queues: Sequence[str] | None = None, ctypes: Sequence[str] | None = None,
                  *, allowed: Iterable[str]) -> Scope:
    """The scope of a request, checked against the prefixes the caller may see.

    Args:
        orgs: org codes asked for (their subtrees); none: the whole allowed set.
        branches: branch codes to narrow to.
        queues: business ids; ctypes: customer type ids.
        allowed: the caller's allowed org prefixes (required): empty sees nothing,
            :data:`EVERYWHERE` the whole centre.

    Raises:
        ScopeError: a code or id is not well formed.
        OutOfScope: an org or branch lies outside ``allowed``.
    """
    if isinstance(allowed, str):  # "1001" would read as the prefixes 1, 0, 0, 1
        raise TypeError("allowed is a list of org prefixes, not one string")
    given = list(allowed)
    allow = None if "" in given else _minimal(_codes(given, "allowed"))
    wanted = _minimal(_codes(orgs, "org")) if orgs else None
    if wanted is not None and allow is not None:
        outside = [o for o in wanted if not any(o.startswith(a) for a in allow)]
        if outside:
            raise OutOfScope(f"org {', '.join(outside)} is outside your scope")
    prefixes = wanted if wanted is not None else allow
    listed = tuple(sorted(set(_codes(branches, "branch")))) if branches else None
    if listed is not None and allow is not None:
        outside = [b for b in listed if not any(b.startswith(a) for a in allow)]
        if outside:
            raise OutOfScope(f"branch {', '.join(outside)} is outside your scope")
    return Scope(prefixes, listed, _names(queues, "queue"), _names(ctypes, "customer_type"))


def _codes(values: Iterable[str] | None, what: str) -> list[str]:
    out = []
    for v in values or ():
        v = str(v).strip()
        if not _CODE.match(v):
            raise ScopeError(f"{what} {v[:40]!r} is not an org code (digits, e.g. 1001)")
        out.append(v)
    return out


def _minimal(codes: list[str]) -> tuple[str, ...]:
    """Drop codes inside another code's subtree: ``[1001, 100101]`` → ``(1001,)``."""
    keep = sorted(set(codes), key=lambda c: (len(c), c))
    out: list[str] = []
    for c in keep:
        if not any(c.startswith(o) for o in out):
            out.append(c)
    return tuple(sorted(out))


def _names(values: Sequence[str] | None, what: str) -> tuple[str, ...] | None:
    if not values:
        return None
    for v in values:
        if not _NAME.match(v):
            raise ScopeError(f"{what} {v[:40]!r} is not an id (letters, digits, _ or -)")
    return tuple(sorted(set(values)))
