"""The branch configuration: what the engine, drivers and links are told at start.

A config is a TOML file validated into frozen pydantic models. Any key can be overridden
on the command line with ``--set key.path=value`` (list items by index: ``windows.0.balancing``).
A bad config raises :class:`ConfigError` naming the key and the problem.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from common.clock import TimeZoneName
from common.errors import ConfigError
from protocols.cards import CardError, parse_ic, parse_id_number
from protocols.forms import FormSettings, settings_of

__all__ = [
    "BranchConfig",
    "CardType",
    "Config",
    "KioskStand",
    "QueueConfig",
    "RemovedQueue",
    "TellerConfig",
    "VipCustomer",
    "VipManager",
    "WindowConfig",
    "apply_overrides",
    "load_config",
    "parse_config",
    "section",
]

_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
STRATEGY_RULES = ("front", "directed", "appointment", "escalated", "vip", "high_return", "priority")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_spans(spans: list[str]) -> list[str]:
    for span in spans:
        m = _SPAN.match(span)
        if not m:
            raise ValueError(f"{span!r} is not a time span like '08:30-17:00'")
        start, end = span.split("-")
        if end <= start:
            raise ValueError(f"{span!r} ends before it starts")
    return spans


class Hours(_Model):
    """Opening hours by kind of day; an empty list means closed that kind of day."""

    workday: list[str] = ["08:30-17:00"]
    weekend: list[str] = ["09:00-16:00"]
    holiday: list[str] = []

    _spans = field_validator("workday", "weekend", "holiday")(_check_spans)


class Calendar(_Model):
    """Holidays (法定节假日) and make-up working days (调休上班) of the year."""

    holidays: list[dt.date] = []
    workdays: list[dt.date] = []

    def kind(self, day: dt.date) -> Literal["workday", "weekend", "holiday"]:
        if day in self.holidays:
            return "holiday"
        if day in self.workdays or day.weekday() < 5:
            return "workday"
        return "weekend"


class BranchConfig(_Model):
    code: str = Field(pattern=r"^\d{4,16}$")
    name: str
    name_en: str = ""
    timezone: TimeZoneName = "Asia/Shanghai"
    day_start: str = Field("00:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    latitude: float | None = None
    longitude: float | None = None


class QueueConfig(_Model):
    """One business (业务/队列). Its tickets are ``prefix`` + ``digits`` zero-padded digits."""

    id: str = Field(pattern=r"^[A-Za-z0-9_]{1,16}$")
    name: str
    name_en: str = ""
    prefix: str = Field("", pattern=r"^[A-Z]{0,3}$")
    digits: int = Field(3, ge=1, le=6)
    first: int = Field(1, ge=0)
    daily_limit: int = Field(0, ge=0)  # 0 = no limit
    notice: str = ""  # restriction line on screen and ticket, e.g. 该叫号纸只能办理挂失改密业务
    notice_en: str = ""
    parent: str | None = None  # menu id: the queue is shown in that second-level menu
    days: Literal["all", "workdays", "weekends"] = "all"
    hours: Hours | None = None  # None: the branch's hours
    high_return: bool = False  # 高回报业务: served before ordinary business
    customer_type: str | None = None  # e.g. "vip" for the VIP queue's walk-ins
    service_minutes: float = Field(5.0, gt=0)  # typical handling time, for waiting estimates

    @property
    def last(self) -> int:
        return 10**self.digits - 1

    def format(self, n: int) -> str:
        return self.prefix + str(n).zfill(self.digits)  # (as f"{n:0{digits}d}", twice as fast)


class RemovedQueue(_Model):
    """What becomes of the waiting and held tickets of a business this configuration no
    longer has (``[removed_queues.A]``): moved to another business, keeping their numbers
    (as a teller's transfer), or closed as not served. Exactly one of the two."""

    transfer_to: str | None = None  # a business of this configuration
    close: bool = False

    @model_validator(mode="after")
    def _one_way(self) -> RemovedQueue:
        if (self.transfer_to is None) != self.close:
            raise ValueError("say either transfer_to = \"<business>\" or close = true")
        return self


QueueId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,16}$")]


class MenuConfig(_Model):
    """A parent button (父队列) opening a second-level menu, or a hint button (提示按钮)."""

    id: str = Field(pattern=r"^[A-Za-z0-9_]{1,16}$")
    name: str
    name_en: str = ""
    hint: str = ""  # a hint button shows this text instead of opening a menu
    hint_en: str = ""


class WindowConfig(_Model):
    """A counter (窗口/柜台) and the bus addresses of its keypad, display and evaluator."""

    number: int = Field(ge=1, le=999)
    name: str = ""
    queues: dict[str, int]  # queue id -> priority; larger = served first (数字越大呼叫越优先)
    balancing: bool = False  # 均衡窗口: when idle, helps queues over the balancing count
    keypad: int | None = None
    display: int | None = None
    evaluator: int | None = None

    @model_validator(mode="after")
    def _addresses(self) -> WindowConfig:
        for device in ("keypad", "display", "evaluator"):
            if getattr(self, device) is None:
                object.__setattr__(self, device, self.number)
        return self


class TellerConfig(_Model):
    id: str = Field(pattern=r"^[A-Za-z0-9_]{1,32}$")
    name: str
    password_hash: str
    keypad_code: int | None = None  # numeric id typed on a keypad that has no letters

    @field_validator("password_hash")
    @classmethod
    def _hash_format(cls, value: str) -> str:
        if not value.startswith("scrypt$") or value.count("$") != 5:
            raise ValueError(
                "expected 'scrypt$n$r$p$salt$hash' (make one: python -m controller hash-password)"
            )
        return value


class CustomerType(_Model):
    id: str
    name: str
    name_en: str = ""
    priority: int = 0  # larger = served first under the "vip" rule


class CardType(_Model):
    """A kind of card recognised by its number's prefix (卡类型 -> 队列)."""

    id: str
    name: str
    prefix: str = Field(pattern=r"^\d*$")  # "" matches every card: put it last as a catch-all
    queue: str
    customer_type: str = "normal"
    stars: int = Field(0, ge=0, le=7)


class VipManager(_Model):
    """A VIP's account manager (客户经理), told when the customer takes a ticket (I1)."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    name: str = Field(min_length=1, max_length=64)
    terminal: str = ""  # the lobby terminal or screen that should show the arrival


class VipCustomer(_Model):
    id: str
    name: str
    stars: int = Field(1, ge=0, le=7)
    customer_type: str = "vip"
    queue: str | None = None  # None: the matching card type's queue, else the VIP queue
    manager: VipManager | None = None
    cards: list[str] = []
    id_numbers: list[str] = []

    # A number with a wrong check digit could never be issued a ticket (the engine refuses
    # it): a config holding one is refused, naming it.
    @field_validator("cards")
    @classmethod
    def _cards_pass_luhn(cls, cards: list[str]) -> list[str]:
        return _all_valid(cards, parse_ic, "card")

    @field_validator("id_numbers")
    @classmethod
    def _ids_pass_their_check(cls, ids: list[str]) -> list[str]:
        return _all_valid(ids, parse_id_number, "ID number")


def _all_valid(numbers: list[str], parse: Callable[[str], object], what: str) -> list[str]:
    for i, number in enumerate(numbers):
        try:
            parse(number)
        except CardError as exc:
            raise ValueError(f"{what} {i + 1}: {exc}") from None
    return numbers


class RatingLevel(_Model):
    score: int = Field(ge=1, le=9)
    name: str
    name_en: str = ""
    bad: bool = False  # 差评: raises the branch's bad-rating alarm (C2)


class Thresholds(_Model):
    escalate_after_min: float = Field(30, ge=0)  # 0 = off
    balance_waiting: int = Field(10, ge=1)
    branch_waiting_cap: int = Field(0, ge=0)  # 0 = no cap
    lobby_alert_waiting: int = Field(30, ge=0)  # 0 = off
    lobby_alert_clear: int = Field(0, ge=0)  # re-armed at or below; 0: 80 % of the above
    lobby_alert_repeat_min: float = Field(10, ge=0)  # at least this long between two alerts

    @property
    def lobby_alert_clear_at(self) -> int:
        """Hysteresis: the waiting count at or below which the lobby alert is re-armed."""
        clear = self.lobby_alert_clear or self.lobby_alert_waiting * 4 // 5
        return min(clear, self.lobby_alert_waiting)  # equal: no hysteresis
    recalls_before_no_show: int = Field(3, ge=0)  # 0 = recalls never discard by themselves
    rating_window_s: float = Field(120, gt=0)


class Strategy(_Model):
    """Selection order at call-next (SPEC B5); ties go first come, first served."""

    order: list[str] = list(STRATEGY_RULES)

    @field_validator("order")
    @classmethod
    def _known_rules(cls, order: list[str]) -> list[str]:
        unknown = [r for r in order if r not in STRATEGY_RULES]
        if unknown:
            raise ValueError(f"unknown rules {unknown}; known: {list(STRATEGY_RULES)}")
        if len(set(order)) != len(order):
            raise ValueError("a rule is listed twice")
        return order


class Kiosk(_Model):
    """Sign-in/sign-out of the ticket machines (排队机签入、签出, A9)."""

    sign_in: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    sign_out: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


KIOSK_ID = r"^[A-Za-z0-9_-]{1,32}$"  # a kiosk page's id (/kiosk?id=…), as the devices name it


class KioskStand(_Model):
    """One kiosk of a branch with several (``[[kiosks]]``, SPEC I4): its page
    (``/kiosk?id=<id>``), its own printer and card readers; every kiosk takes its numbers
    from the box's one engine (A2). The sections are the top-level ``[printer]`` and
    ``[card_reader]`` ones, per kiosk (validated by their drivers, controller/compose.py);
    a ``[printer]`` key not given here is the top-level section's (one profile, one QR
    address for all). Without ``[[kiosks]]`` the box has one kiosk, as before."""

    id: str = Field(pattern=KIOSK_ID)
    name: str
    name_en: str = ""
    printer: dict[str, Any] = {}
    card_reader: dict[str, Any] = {}


class ClockConfig(_Model):
    """``start`` makes the box's clock start at that instant and run on in real time."""

    start: dt.datetime | None = None

    @field_validator("start")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-11-25T10:00:00+08:00")
        return value


class HttpConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # Floods and slow clients (common/httpserver.py, common/limits.py):
    head_timeout_s: float = Field(10.0, gt=0, le=300)  # request line + headers, in all
    keep_alive_s: float = Field(5.0, gt=0, le=300)  # an idle connection between requests
    write_stall_s: float = Field(60.0, gt=0, le=3600)  # a client that reads nothing
    max_header_bytes: int = Field(16384, ge=4096, le=1048576)
    max_connections: int = Field(1000, ge=16, le=100000)  # and never over the open-file limit
    per_address: int = Field(64, ge=4, le=100000)  # connections from one client address
    max_body_bytes: int = Field(65536, ge=1024, le=64 * 1048576)
    body_timeout_s: float = Field(30.0, gt=0, le=600)  # a request's whole body
    # the request parser (common/httpserver.py): llhttp in C, or h11 in pure Python (slower)
    parser: Literal["httptools", "h11"] = "httptools"
    # the event loop: uvloop (libuv, C) or the standard library's (slower)
    loop: Literal["uvloop", "asyncio"] = "uvloop"


class JournalConfig(_Model):
    keep_days: int = Field(90, ge=1)
    snapshot_every: int = Field(1000, ge=1)  # events between snapshots
    disk_warn_mb: int = Field(500, ge=0)  # free space under this: health alarm + notice
    disk_stop_mb: int = Field(100, ge=0)  # under this: no new tickets (controller/disk.py)


class Config(_Model):
    """A whole branch box configuration."""

    branch: BranchConfig
    hardware: Literal["sim", "real", "none"] = "none"
    queues: list[QueueConfig]
    # A business taken out of the configuration while its tickets wait: what to do with
    # them (docs/config.md). A push that strands tickets without saying is refused.
    removed_queues: dict[QueueId, RemovedQueue] = {}
    menus: list[MenuConfig] = []
    windows: list[WindowConfig]
    tellers: list[TellerConfig] = []
    customer_types: list[CustomerType] = [
        CustomerType(id="normal", name="普通客户", name_en="Customer"),
        CustomerType(id="corporate", name="对公客户", name_en="Corporate", priority=1),
        CustomerType(id="vip", name="VIP客户", name_en="VIP", priority=2),
    ]
    card_types: list[CardType] = []
    vip_customers: list[VipCustomer] = []
    rating_levels: list[RatingLevel] = [
        RatingLevel(score=1, name="很不满意", name_en="Very dissatisfied", bad=True),
        RatingLevel(score=2, name="不满意", name_en="Dissatisfied", bad=True),
        RatingLevel(score=3, name="一般", name_en="Neutral"),
        RatingLevel(score=4, name="满意", name_en="Satisfied"),
        RatingLevel(score=5, name="非常满意", name_en="Very satisfied"),
    ]
    hours: Hours = Hours()
    calendar: Calendar = Calendar()
    thresholds: Thresholds = Thresholds()
    strategy: Strategy = Strategy()
    kiosk: Kiosk = Kiosk()
    kiosks: list[KioskStand] = []  # several kiosks, each with its printer (docs/printer.md)
    clock: ClockConfig = ClockConfig()
    http: HttpConfig = HttpConfig()
    journal: JournalConfig = JournalConfig()
    # Sections owned by the drivers and links; each is validated by its own module with
    # section() when the box builds its components (still before anything starts).
    printer: dict[str, Any] = {}
    rs485: dict[str, Any] = {}
    audio: dict[str, Any] = {}
    gpio: dict[str, Any] = {}
    card_reader: dict[str, Any] = {}
    hall_display: dict[str, Any] = {}
    uplink: dict[str, Any] = {}
    update: dict[str, Any] = {}  # software updates from the centre (controller/update.py)
    cif: dict[str, Any] = {}  # the CRM/CIF customer lookup (controller/customers.py)
    web: dict[str, Any] = {}  # the local screens: logins, kiosk layout (controller/web/settings)
    forms: dict[str, Any] = {}  # pre-filled forms per business (protocols/forms.py, I2)

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        _unique("queues", (q.id for q in self.queues))
        _unique("queues (prefix)", (q.prefix for q in self.queues))
        _unique("windows", (w.number for w in self.windows))
        _unique("tellers", (t.id for t in self.tellers))
        _unique("menus", (m.id for m in self.menus))
        _unique("kiosks", (k.id for k in self.kiosks))
        if not self.windows:  # nobody could ever be called: refused, not run quietly
            raise ValueError("windows: a branch needs at least one window")
        queue_ids = {q.id for q in self.queues}
        menu_ids = {m.id for m in self.menus}
        type_ids = {c.id for c in self.customer_types}
        for i, q in enumerate(self.queues):
            if q.parent is not None and q.parent not in menu_ids:
                raise ValueError(f"queues.{i}.parent: no menu {q.parent!r}")
            if q.customer_type is not None and q.customer_type not in type_ids:
                raise ValueError(f"queues.{i}.customer_type: unknown {q.customer_type!r}")
            if q.first > q.last:
                raise ValueError(f"queues.{i}.first: {q.first} does not fit in {q.digits} digits")
        for i, w in enumerate(self.windows):
            for qid in w.queues:
                if qid not in queue_ids:
                    raise ValueError(f"windows.{i}.queues: unknown queue {qid!r}")
        for i, c in enumerate(self.card_types):
            if c.queue not in queue_ids:
                raise ValueError(f"card_types.{i}.queue: unknown queue {c.queue!r}")
            if c.customer_type not in type_ids:
                raise ValueError(f"card_types.{i}.customer_type: unknown {c.customer_type!r}")
        for i, v in enumerate(self.vip_customers):
            if v.queue is not None and v.queue not in queue_ids:
                raise ValueError(f"vip_customers.{i}.queue: unknown queue {v.queue!r}")
            if v.customer_type not in type_ids:
                raise ValueError(f"vip_customers.{i}.customer_type: unknown {v.customer_type!r}")
        for qid, rule in self.removed_queues.items():
            if qid in queue_ids:
                raise ValueError(f"removed_queues.{qid}: {qid!r} is still a business; "
                                 f"delete this entry")
            if rule.transfer_to is not None and rule.transfer_to not in queue_ids:
                raise ValueError(f"removed_queues.{qid}.transfer_to: unknown queue "
                                 f"{rule.transfer_to!r}")
        _unique("rating_levels", (r.score for r in self.rating_levels))
        self.form_settings  # noqa: B018 - parsed now: a bad [forms] is refused at load
        return self

    @property
    def form_settings(self) -> FormSettings:
        """The ``[forms]`` section, parsed once (protocols/forms.py)."""
        return settings_of(self.__dict__, self.forms)

    # --- lookups the engine uses on every command ---------------------------------------

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.branch.timezone)

    def queue(self, queue_id: str) -> QueueConfig | None:
        return self._index()["queues"].get(queue_id)

    def window(self, number: int) -> WindowConfig | None:
        return self._index()["windows"].get(number)

    def stand(self, kiosk_id: str) -> KioskStand | None:
        """The ``[[kiosks]]`` entry of ``kiosk_id`` (None: not one of them)."""
        return next((k for k in self.kiosks if k.id == kiosk_id), None)

    def teller(self, teller_id: str) -> TellerConfig | None:
        return self._index()["tellers"].get(teller_id)

    def customer_type(self, type_id: str) -> CustomerType | None:
        return self._index()["types"].get(type_id)

    def rating_level(self, score: int) -> RatingLevel | None:
        return self._index()["ratings"].get(score)

    def _index(self) -> dict[str, dict[Any, Any]]:
        # Cached on the instance; keyed on the lists' identities so that a model_copy()
        # with replaced lists never answers from the original's index.
        lists = (self.queues, self.windows, self.tellers, self.customer_types,
                 self.rating_levels)
        key = tuple(id(x) for x in lists)
        cached = self.__dict__.get("_lookup")
        if cached is not None and cached[0] == key:
            return cached[1]
        index: dict[str, dict[Any, Any]] = {
            "queues": {q.id: q for q in self.queues},
            "windows": {w.number: w for w in self.windows},
            "tellers": {t.id: t for t in self.tellers},
            "types": {c.id: c for c in self.customer_types},
            "ratings": {r.score: r for r in self.rating_levels},
        }
        self.__dict__["_lookup"] = (key, index)
        return index

    @property
    def version(self) -> str:
        """A short hash of the canonical config: what the centre sees running."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _unique(what: str, values: Iterable[object]) -> None:
    seen: set[object] = set()
    for v in values:
        if v in seen:
            raise ValueError(f"{what}: {v!r} appears twice")
        seen.add(v)


# --- loading ------------------------------------------------------------------------------


def parse_config(data: dict[str, Any], source: str = "config") -> Config:
    """Validate raw data into a :class:`Config`, or raise one clear :class:`ConfigError`."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if not key and msg.split(":")[0].replace(".", "").replace("_", "").isalnum():
            key, _, msg = msg.partition(": ")
        raise ConfigError(key or "(root)", msg, source) from None


M = TypeVar("M", bound=BaseModel)


def section(config: Config, name: str, model: type[M]) -> M:
    """Validate the config section ``name`` (a driver's or link's own) into ``model``.

    Raises :class:`ConfigError` naming the full key, e.g. ``rs485.baudrate``.
    """
    try:
        return model.model_validate(getattr(config, name))
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join([name, *(str(p) for p in err["loc"])])
        raise ConfigError(key, err["msg"].removeprefix("Value error, ")) from None


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides; values are TOML literals, else plain strings."""
    for item in overrides:
        path, sep, raw = item.partition("=")
        if not sep or not path:
            raise ConfigError(item, "expected key.path=value", "--set")
        _set_path(data, path.split("."), _parse_value(raw), item)
    return data


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _set_path(node: Any, parts: list[str], value: Any, item: str) -> None:
    *parents, last = parts
    for part in parents:
        if isinstance(node, list):
            node = node[_index(node, part, item)]
        else:
            node = node.setdefault(part, {})
        if not isinstance(node, dict | list):
            raise ConfigError(".".join(parts), f"{part!r} is not a table", "--set")
    if isinstance(node, list):
        node[_index(node, last, item)] = value
    else:
        node[last] = value


def _index(node: list[Any], part: str, item: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(item.partition("=")[0], f"no list item {part!r}", "--set")
    return int(part)


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Read a TOML config file, apply ``--set`` overrides and validate."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("(file)", f"{path} does not exist", str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(syntax)", str(exc), str(path)) from None
    return parse_config(apply_overrides(data, overrides), str(path))
