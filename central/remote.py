"""Remote tickets (远程取号, H3), following a ticket, remote rating (C3): the centre asks the
branch over MQTT and waits for its answer.

A request goes as a command (``cmd/ticket``, ``cmd/track``, ``cmd/rate``) and the box answers
on ``reply``; whichever centre consumer receives the answer stores it, and :class:`BranchLink`
polls the store for the ids it waits on (one query for all of them, every 10 ms), so any
centre process can wait for an answer another one received. A branch the centre knows to
be offline is not asked: the phone is told at once. Each request carries ``expires_at``;
a box that receives it late (it was offline and its broker session kept the command)
refuses it instead of issuing a ticket nobody waits for.

Following a ticket asks its branch at most once per ``track_ttl_s`` for every ticket
followed there (:class:`Tracker`), however many phones are watching.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from protocols import appointment as ap
from protocols.uplink import NOT_RUN

from .appointments import Customer, CustomerRefused, Recent, StorePool, refused
from .cif import customer_columns
from .store import Store
from .store.reader import rows_for_keys

if TYPE_CHECKING:
    from .appointments import Appointments
    from .context import CentreContext

__all__ = ["BranchLink", "RemoteTickets", "Tracker"]

log = logging.getLogger(__name__)

POLL_S = 0.01
DEFAULT_RATINGS = [{"score": n, "name": name} for n, name in
                   enumerate(("很不满意", "不满意", "一般", "满意", "非常满意"), 1)]
ONLINE_TTL_S = 1.0
MESSAGES = {
    "branch_offline": (503, "网点暂时无法连接,请到网点取号或稍后再试。",
                       "The branch cannot be reached now; take a ticket there or try later."),
    "branch_no_answer": (504, "网点未及时响应,请稍后刷新查看,或到网点取号。",
                         "The branch did not answer in time; check again shortly."),
    "branch_busy": (503, "网点系统繁忙,请稍后再试,或到网点取号。",
                    "The branch is busy right now; try again shortly or take a ticket there."),
    "remote_unknown": (404, "没有该号票。", "No such ticket."),
    "too_many_remote": (409, "您今天在该网点已有{n}张远程号票。",
                        "You already have {n} remote tickets at this branch today."),
    "not_rateable": (409, "服务结束后才能评价。", "You can rate once the service is finished."),
}


def _refused(code: str, **params: Any) -> CustomerRefused:
    status, zh, en = MESSAGES[code]
    return CustomerRefused(code, status, zh.format(**params), en.format(**params))


def _branch_refusal(reply: dict[str, Any]) -> CustomerRefused:
    """The box's refusal in its own words (``queue_paused`` with its reason …); one it
    answered without running the request (its line full …) is "busy, try again"."""
    err = reply.get("error") or {}
    if err.get("code") in NOT_RUN:  # words meant for the centre, not for a customer
        return _refused("branch_busy")
    return CustomerRefused(str(err.get("code", "refused")), 409, str(err.get("message", "")),
                           str(err.get("message_en", "")))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class BranchLink:
    """Commands to a branch and their answers, for requests a phone is waiting on."""

    def __init__(self, centre: CentreContext, pool: StorePool) -> None:
        self.centre, self.pool = centre, pool
        # its own connection: never queued behind others
        self.replies = StorePool(pool.url, 1, pool.clock)
        self._waiting: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._online = Recent(ONLINE_TTL_S)

    async def online(self, branch: str) -> bool | None:
        """What the branch's retained status last said (None: never heard of); the store
        has it within ``ingest.live_flush_s``, and it is read at most once per second."""
        hit = self._online.fresh(branch)
        if hit is not None:
            return hit[0]
        row = await self.pool.read(lambda st: st.execute(
            "SELECT online FROM branches WHERE branch = ?", (branch,)).fetchone())
        state = None if row is None or row[0] is None else bool(row[0])
        self._online.keep(branch, (state,))
        return state

    async def ask(self, branch: str, name: str, args: dict[str, Any], timeout: float
                  ) -> dict[str, Any] | None:
        """Send command ``name``; its reply, or None when none came within ``timeout``."""
        cmd_id = str(args.get("id") or f"{name}-{uuid.uuid4().hex[:16]}")
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[(branch, cmd_id)] = fut
        try:
            await self.centre.send_command(branch, name, {**args, "id": cmd_id})
            if self._poller is None or self._poller.done():
                self._poller = asyncio.create_task(self._poll(), name="branch-replies")
            async with asyncio.timeout(timeout):
                return await fut
        except (TimeoutError, ConnectionError):  # no answer, or not even sent (broker down)
            return None
        finally:
            self._waiting.pop((branch, cmd_id), None)

    async def _poll(self) -> None:
        while self._waiting:
            await asyncio.sleep(POLL_S)  # the store is the rendezvous: a timer, not a signal
            keys = list(self._waiting)
            try:
                found = await self.replies.read(_replies, keys)
            except Exception as exc:  # the store hiccuped: the waiters time out on their own
                log.warning("reading replies: %s", exc)
                continue
            for key, body in found.items():
                fut = self._waiting.get(key)
                if fut is not None and not fut.done():
                    fut.set_result(body)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.replies.close()


def _replies(st: Store, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The answers to these (branch, command id), by the primary key (asked every poll
    while a phone waits: by id alone it read the whole table)."""
    rows = rows_for_keys(st, "SELECT branch, id, body FROM replies WHERE (branch, id) IN "
                         "(VALUES {keys})", sorted(set(keys)))
    return {(b, i): _json(body) for b, i, body in rows}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


class Tracker:
    """Where followed tickets stand, per branch, asked of the branch ≤ once per ``ttl``."""

    def __init__(self, link: BranchLink, ttl: float, timeout: float) -> None:
        self.link, self.ttl, self.timeout = link, ttl, timeout
        self._answers: dict[str, tuple[float, dict[str, Any]]] = {}
        self._followed: dict[str, dict[str, float]] = {}
        self._asking: dict[str, asyncio.Task[dict[str, Any] | None]] = {}
        self._asked_at: dict[str, float] = {}  # when each branch was last asked (monotonic)
        self._answer_asked: dict[str, float] = {}  # … for the answer in _answers

    async def where(self, branch: str, number: str) -> tuple[dict[str, Any] | None, bool]:
        """(the branch's latest answer about ``number``'s queue, fresh?)."""
        now = time.monotonic()
        followed = self._followed.setdefault(branch, {})
        followed[number] = now
        for n, at in list(followed.items()):
            if now - at > 120:  # nobody looked for two minutes: stop asking about it
                del followed[n]
        cached = self._answers.get(branch)
        if cached and now - cached[0] < self.ttl and number in cached[1].get("tickets", {}):
            return cached[1], True
        task = self._asking.get(branch)
        if task is None or task.done():
            task = asyncio.create_task(self._ask(branch), name=f"track-{branch}")
            self._asking[branch] = task
        answer = await asyncio.shield(task)
        if answer is not None:
            return answer, True
        return (cached[1] if cached else None), False

    async def positions(self, branch: str, numbers: list[str]
                        ) -> tuple[dict[str, Any] | None, float]:
        """The branch's latest answer about ``numbers`` for a watcher (central/nearturn.py)
        and when it was asked (monotonic): never a second ask within ``ttl`` of the last
        (then the cached answer, whatever it holds, or None), so a watcher and the phones
        together ask a branch ≤ once per ``ttl``."""
        now = time.monotonic()
        followed = self._followed.setdefault(branch, {})
        for n in numbers:
            followed[n] = now
        task = self._asking.get(branch)
        if task is None or task.done():
            if now - self._asked_at.get(branch, -self.ttl) < self.ttl:
                return self._latest(branch)
            task = asyncio.create_task(self._ask(branch), name=f"track-{branch}")
            self._asking[branch] = task
        await asyncio.shield(task)
        return self._latest(branch)

    def _latest(self, branch: str) -> tuple[dict[str, Any] | None, float]:
        cached = self._answers.get(branch)
        return (cached[1], self._answer_asked.get(branch, 0.0)) if cached else (None, 0.0)

    async def _ask(self, branch: str) -> dict[str, Any] | None:
        self._asked_at[branch] = asked = time.monotonic()
        if await self.link.online(branch) is False:
            return None
        numbers = sorted(self._followed.get(branch, {}))[-200:]
        reply = await self.link.ask(branch, "track", {"numbers": numbers}, self.timeout)
        if reply is None or not reply.get("ok"):
            return None
        answer: dict[str, Any] = reply.get("result") or {}
        self._answers[branch] = (time.monotonic(), answer)
        self._answer_asked[branch] = asked
        return answer


def ticket_position(answer: dict[str, Any] | None, number: str) -> dict[str, Any]:
    """A ticket's state, ahead, window and "about N minutes" from a track answer."""
    t = ((answer or {}).get("tickets") or {}).get(number)
    if t is None:
        return {"state": "unknown"}
    load = ((answer or {}).get("queues") or {}).get(t.get("queue"), {})
    out = {"state": t["state"], "ahead": t.get("ahead"), "window": t.get("window"),
           "rated": bool(t.get("rated"))}
    if t.get("ahead") is not None:
        windows = t.get("windows_open") or load.get("windows_open", 0)
        out["wait_minutes"] = ap.wait_minutes(int(t["ahead"]),
                                              float(load.get("service_minutes", 5.0)),
                                              int(windows))
    return out


class RemoteTickets:
    """Tickets taken from a phone, followed, and rated once the service is finished."""

    def __init__(self, appointments: Appointments, link: BranchLink,
                 clock: Callable[[], float] | None = None) -> None:
        self.appointments = appointments
        self.settings = appointments.settings
        self.link = link
        self.pool = appointments.pool
        self.clock = clock or appointments.clock
        self.tracker = Tracker(link, self.settings.track_ttl_s, self.settings.remote_timeout_s)

    async def take(self, who: Customer, branch: str, queue: str) -> dict[str, Any]:
        """Ask ``branch`` for a ticket of ``queue``; the ticket with its follow-up token."""
        if who.id is None:
            raise refused("not_registered")
        s, day = self.settings, self.appointments.today()
        open_ = await self.pool.read(_open_remote, who.id, branch, day)
        if open_ >= s.remote_per_customer:
            raise _refused("too_many_remote", n=s.remote_per_customer)
        if not await self.link.online(branch):
            raise _refused("branch_offline")
        token, request = secrets.token_urlsafe(24), f"ticket-{uuid.uuid4().hex[:16]}"
        known = customer_columns(await self.appointments.who_is(who.id))  # within budget
        now = self.clock()
        args: dict[str, Any] = {"id": request, "queue": queue.upper(),
                                "expires_at": now + s.remote_expiry_s}
        if known["customer_type"] is not None:  # the box ranks it like a VIP's
            args["customer"] = {"type": known["customer_type"], "stars": known["stars"],
                                "source": known["customer_source"]}
        reply = await self.link.ask(branch, "ticket", args, s.remote_timeout_s)
        # One write, after the answer (or its absence: a late answer is matched by the
        # request id when the ticket's link is opened).
        state = "no_answer" if reply is None else "issued" if reply.get("ok") else "refused"
        await self.pool.run(_new_remote, token, request, who.id, branch, queue.upper(), day,
                            now, state, reply, known)
        if reply is None:
            raise _refused("branch_no_answer")
        if not reply.get("ok"):
            raise _branch_refusal(reply)
        return {**self._issued_view(reply["result"], branch), "token": token,
                **(await self.branch_words(branch))}

    async def branch_words(self, branch: str) -> dict[str, Any]:
        """The branch's name and its rating levels (its own words, from its catalogue)."""
        cat = await self.appointments.catalogue(branch) or {}
        return {"branch_name": await self.appointments.branch_name(branch),
                "rating_levels": cat.get("ratings") or DEFAULT_RATINGS}

    def _issued_view(self, result: dict[str, Any], branch: str) -> dict[str, Any]:
        """The answer to a fresh ticket, from the branch's reply alone (no second ask)."""
        ahead = int(result.get("ahead", 0))
        return {"branch": branch, "queue": result.get("queue"), "day": result.get("day"),
                "number": result.get("number"), "queue_name": result.get("queue_name"),
                "issued_at": result.get("issued_at"), "state": "waiting", "ahead": ahead,
                "window": None, "rated": False, "can_rate": False, "live": True,
                "wait_minutes": ap.wait_minutes(ahead, float(result.get("service_minutes", 5)),
                                                int(result.get("windows_open", 0)))}

    async def view(self, token: str) -> dict[str, Any]:
        """A remote ticket by its token: number, state, ahead, "about N minutes", rating."""
        row = await self.pool.run(_remote, _sha(token))
        if row is None:
            raise _refused("remote_unknown")
        view = _remote_view(row)
        view.update(await self.branch_words(row["branch"]))
        if row["state"] == "issued" and row["day"] == self.appointments.today():
            answer, fresh = await self.tracker.where(row["branch"], row["number"])
            view.update(ticket_position(answer, row["number"]), live=fresh)
            view["can_rate"] = view["state"] == "finished" and not view.get("rated")
        return view

    async def rate(self, token: str, score: int) -> dict[str, Any]:
        """Rate the service of a remote ticket, once (the branch's engine decides)."""
        row = await self.pool.run(_remote, _sha(token))
        if row is None or row["state"] != "issued":
            raise _refused("remote_unknown")
        return await self.rate_number(row["branch"], row["number"], score)

    async def rate_number(self, branch: str, number: str, score: int) -> dict[str, Any]:
        result = await self.ask_branch(branch, "rate", {"number": number, "score": score})
        return {**result, "message": "谢谢您对我们工作的支持,再见",
                "message_en": "Thank you. Goodbye."}

    async def ask_branch(self, branch: str, name: str, args: dict[str, Any]
                         ) -> dict[str, Any]:
        """Command ``name`` for a phone waiting on it (with ``expires_at``); the branch's
        result, or :class:`CustomerRefused` in words for the customer."""
        if not await self.link.online(branch):
            raise _refused("branch_offline")
        reply = await self.link.ask(branch, name, {
            **args, "expires_at": self.clock() + self.settings.remote_expiry_s},
            self.settings.remote_timeout_s)
        if reply is None:
            raise _refused("branch_no_answer")
        if not reply.get("ok"):
            raise _branch_refusal(reply)
        return dict(reply.get("result") or {})

    async def ticket_of(self, token: str) -> dict[str, Any] | None:
        """The remote ticket a link's token stands for (its stored row), or None."""
        return await self.pool.run(_remote, _sha(token))

    async def follow(self, branch: str, ticket_id: str) -> dict[str, Any]:
        """A printed ticket's QR (``/t/<day>-<number>``): where it stands, no rating."""
        day, _, number = ticket_id.partition("-")
        today = self.appointments.today().replace("-", "")
        view: dict[str, Any] = {"branch": branch, "number": number, "day": day,
                                **(await self.branch_words(branch))}
        if day != today:
            return {**view, "state": "expired"}
        answer, fresh = await self.tracker.where(branch, number)
        return {**view, **ticket_position(answer, number), "live": fresh}

    async def close(self) -> None:
        await self.link.close()


def _open_remote(st: Store, cid: str, branch: str, day: str) -> int:
    row = st.execute("SELECT count(*) FROM remote_tickets WHERE customer = ? AND branch = ? AND "
                     "day = ? AND state IN ('pending', 'issued')", (cid, branch, day)).fetchone()
    return int(row[0])


def _new_remote(st: Store, token: str, request: str, cid: str, branch: str, queue: str,
                day: str, now: float, state: str, reply: dict[str, Any] | None,
                known: dict[str, Any]) -> None:
    result = (reply or {}).get("result") or {}
    st.execute("INSERT INTO remote_tickets (token_digest, request, customer, branch, queue, day, "
               "state, number, ticket, body, created_at, customer_type, stars, "
               "customer_source, customer_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
               "?, ?)",
               (_sha(token), request, cid, branch, queue, day, state, result.get("number"),
                result.get("ticket"), json.dumps(reply, ensure_ascii=False) if reply else None,
                now, known["customer_type"], known["stars"], known["customer_source"],
                known["customer_reason"]))


def _settle(st: Store, request: str, state: str, reply: dict[str, Any] | None) -> None:
    result = (reply or {}).get("result") or {}
    st.execute("UPDATE remote_tickets SET state = ?, number = ?, ticket = ?, body = ? "
               "WHERE request = ?", (state, result.get("number"), result.get("ticket"),
                                     json.dumps(reply, ensure_ascii=False) if reply else None,
                                     request))


def _remote(st: Store, token_digest: str) -> dict[str, Any] | None:
    cur = st.execute("SELECT * FROM remote_tickets WHERE token_digest = ?", (token_digest,))
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    if row is None:
        return None
    found = dict(zip(names, row, strict=True))
    if found["state"] in ("pending", "no_answer"):  # the answer may have come since
        reply = st.reply(found["branch"], found["request"])
        if reply is not None:
            _settle(st, found["request"], "issued" if reply.get("ok") else "refused", reply)
            return _remote(st, token_digest)
    return found


def _remote_view(row: dict[str, Any]) -> dict[str, Any]:
    body = _json(row["body"]) if row["body"] else {}
    result = (body or {}).get("result") or {}
    err = (body or {}).get("error")
    return {"branch": row["branch"], "queue": row["queue"], "day": row["day"],
            "number": row["number"], "state": row["state"],
            "queue_name": result.get("queue_name", row["queue"]),
            "issued_at": result.get("issued_at"), "error": err}
