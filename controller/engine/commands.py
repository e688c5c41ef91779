"""Commands the engine accepts: what a kiosk, keypad, soft caller or the centre asks for.

Every input path (HTTP API, RS485 keypad, GPIO button, MQTT command) builds one of these
and hands it to the same engine, so every path obeys the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "CallBack",
    "CallNext",
    "CardCustomer",
    "Command",
    "Delivered",
    "FillForm",
    "Finish",
    "Hold",
    "InsertFront",
    "IssueTicket",
    "Login",
    "Logout",
    "NoShow",
    "PauseQueue",
    "PauseWindow",
    "PrintFailed",
    "Rate",
    "RateTicket",
    "Recall",
    "ResumeQueue",
    "ResumeWindow",
    "SettleRemovedQueues",
    "SignIn",
    "SignOut",
    "Tick",
    "Transfer",
    "VoidUndelivered",
]


@dataclass(frozen=True, slots=True)
class CardCustomer:
    """Who a card's holder is, as the box's customer lookup found out before issuing
    (SPEC I1, controller/customers.py): the engine does not call out, it is told.

    ``source``: who answered, ``cif``, ``cache``, ``local`` (the VIP table) or ``none``;
    ``reason``: why not the CIF (``timeout``, ``error``, ``not_found``, ``busy``, ``off``),
    "" when it answered. ``id`` None: nobody known (the card type decides).
    ``manager``: the account manager as (id, name, terminal).
    """

    source: str
    reason: str = ""
    id: str | None = None
    customer_type: str = "vip"
    stars: int = 0
    name: str | None = None
    queue: str | None = None
    manager: tuple[str, str, str] | None = None


@dataclass(frozen=True, slots=True)
class IssueTicket:
    """Take a ticket (取号) for a business, or by a card's number (A1, A5)."""

    queue: str | None = None
    card: str | None = None
    kiosk: str = "kiosk"
    channel: str = "kiosk"  # kiosk | button | card | remote | appointment
    appointment: str | None = None  # booking id, when redeeming an appointment (A6)
    # The issuer will say the ticket reached its customer (:class:`Delivered`); until it
    # does, a restart voids it (:class:`VoidUndelivered`): nobody holds its number.
    confirm: bool = False
    customer: CardCustomer | None = None  # a card's holder, looked up (SPEC I1)


@dataclass(frozen=True, slots=True)
class Delivered:
    """A ticket issued with ``confirm`` reached its customer: ``how`` is ``printed`` (on
    paper) or ``answered`` (its number is on the kiosk's screen or in the API's answer)."""

    number: str
    how: str


@dataclass(frozen=True, slots=True)
class FillForm:
    """A customer's pre-filled form (预填单, I2) for one of today's open tickets: the
    values as they came (field name → text); the engine checks them against the form of
    the ticket's business (protocols/forms.py). A second form replaces the first."""

    number: str
    values: Any
    channel: str = "kiosk"  # kiosk | remote (the phone, through the centre) | staff
    form: str | None = None  # which of the business's forms (None: its only one)


@dataclass(frozen=True, slots=True)
class VoidUndelivered:
    """At start-up: void today's waiting tickets issued with ``confirm`` that never reached
    a customer (the box stopped between committing and printing or answering them)."""


@dataclass(frozen=True, slots=True)
class PrintFailed:
    """The ticket was issued (and is durable) but did not print: record why (A4)."""

    number: str
    reason: str


@dataclass(frozen=True, slots=True)
class Login:
    """A teller logs in at a window.

    ``verified`` is the verified-login fact: ``True``/``False`` when the caller has already
    checked ``password`` against the teller's hash (the box does, off its event loop, and
    always overwrites whatever a caller put here); ``None``: the engine checks it itself
    (slow on purpose: scrypt), as the simulator and the engine's own tests do.
    """

    window: int
    teller: str
    password: str
    verified: bool | None = None


@dataclass(frozen=True, slots=True)
class Logout:
    window: int


@dataclass(frozen=True, slots=True)
class CallNext:
    """Finish the current customer (if any) and call the next by the window's strategy."""

    window: int


@dataclass(frozen=True, slots=True)
class Recall:
    window: int


@dataclass(frozen=True, slots=True)
class NoShow:
    """Discard the current number (弃号): the customer did not come."""

    window: int


@dataclass(frozen=True, slots=True)
class Finish:
    window: int
    ask_rating: bool = False


@dataclass(frozen=True, slots=True)
class PauseWindow:
    window: int


@dataclass(frozen=True, slots=True)
class ResumeWindow:
    window: int


@dataclass(frozen=True, slots=True)
class Transfer:
    """Move a ticket to another window or business, keeping its number (转移, B4).

    ``number`` defaults to the ticket the window is serving.
    """

    window: int
    to_window: int | None = None
    to_queue: str | None = None
    number: str | None = None


@dataclass(frozen=True, slots=True)
class InsertFront:
    """Put a waiting ticket at the front (号码插前, B3)."""

    number: str
    by: str = "staff"


@dataclass(frozen=True, slots=True)
class Hold:
    """Set the current customer aside (挂起), e.g. to fill in a form; call back later."""

    window: int


@dataclass(frozen=True, slots=True)
class CallBack:
    """Call a held ticket (or a no-show who came back) to this window again."""

    window: int
    number: str | None = None


@dataclass(frozen=True, slots=True)
class Rate:
    window: int
    score: int


@dataclass(frozen=True, slots=True)
class RateTicket:
    """Rate one of today's finished services by its number, from a phone (C3).

    The same one-rating rule as :class:`Rate`: a service rated on the window's evaluator
    cannot be rated again here, and the other way round.
    """

    number: str
    score: int
    channel: str = "remote"


@dataclass(frozen=True, slots=True)
class PauseQueue:
    queue: str
    reason: str


@dataclass(frozen=True, slots=True)
class ResumeQueue:
    queue: str


@dataclass(frozen=True, slots=True)
class SignIn:
    """Kiosks start issuing (排队机签入)."""


@dataclass(frozen=True, slots=True)
class SignOut:
    """Kiosks stop issuing (排队机签出)."""


@dataclass(frozen=True, slots=True)
class SettleRemovedQueues:
    """After a new configuration: the waiting and held tickets of businesses it no longer
    has go where its ``removed_queues`` says (moved, keeping their numbers, or closed)."""


@dataclass(frozen=True, slots=True)
class Tick:
    """Nothing but the passing of time: closes the day at the boundary."""


Command = (
    IssueTicket | PrintFailed | Login | Logout | CallNext | Recall | NoShow | Finish | PauseWindow
    | ResumeWindow | Transfer | InsertFront | Hold | CallBack | Rate | RateTicket | PauseQueue
    | ResumeQueue | SignIn | SignOut | Tick | Delivered | VoidUndelivered
    | SettleRemovedQueues | FillForm
)
