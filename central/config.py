"""The centre's configuration: broker, store, HTTP, ingest and reconciliation settings.

A TOML file (``examples/centre.toml``), every key overridable with ``--set key.path=value``
like the box's. A bad value raises :class:`CentreConfigError` naming the key.
"""

from __future__ import annotations

import ipaddress
import logging
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from common.clock import ClockStart
from common.errors import ConfigError
from controller.config import apply_overrides
from protocols.forms import FormSettings, settings_of
from protocols.uplink import parse_broker_url

from .cif import CentreCifSettings
from .customer_settings import CustomerSettings
from .errors import CentreConfigError
from .settings import WebSettings
from .wechat.settings import WeChatSettings

__all__ = ["AlertSmsSettings", "CentreConfig", "SmsSettings", "load_centre_config",
           "migrate_sms_keys"]

log = logging.getLogger(__name__)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerSettings(_Model):
    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: str | None = None
    group: str = Field("paidui-centre", pattern=r"^[A-Za-z0-9_-]{1,64}$")  # $share/{group}/…
    client_id: str | None = None  # default: centre-{host}-{pid}-{n}
    keepalive: int = Field(30, ge=5, le=3600)
    ca_file: str | None = None  # for mqtts://
    # QoS 1 messages a centre client has sent and not yet had acknowledged, at most (acks,
    # commands, aggregates). At most the broker's Receive Maximum: the shipped Mosquitto's
    # max_inflight_messages is 100 (EMQX: mqtt.max_inflight, 32 by default). paho's own
    # default, 20, made a commit's 500 acks 25 round trips through a busy broker.
    inflight: int = Field(100, ge=1, le=65535)
    # Several independent brokers (the boxes fail over between them): consumers on every
    # one, commands published on every one; ``url`` is then not used (docs/deploy.md).
    urls: list[str] = Field(default_factory=list, max_length=8)

    @model_validator(mode="before")
    @classmethod
    def _old_version_key(cls, data: Any) -> Any:
        """``consumer_mqtt`` chose the consumers' MQTT version while they used paho; their
        own client speaks 3.1.1 only (docs/uplink.md). An old file still starts."""
        if isinstance(data, dict) and "consumer_mqtt" in data:
            log.warning("broker.consumer_mqtt is no longer read: the consumers speak "
                        "MQTT 3.1.1")
            return {k: v for k, v in data.items() if k != "consumer_mqtt"}
        return data

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parse_broker_url(value)
        return value

    @field_validator("urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            parse_broker_url(url)
        if len(set(value)) != len(value):
            raise ValueError("a broker address is listed twice")
        return value

    @property
    def all_urls(self) -> tuple[str, ...]:
        """The brokers the centre's consumers connect to."""
        return tuple(self.urls) or (self.url,)


class StoreSettings(_Model):
    url: str = "sqlite:///data/centre.sqlite3"  # or postgresql://user@host:5432/db


class PublicLimits(_Model):
    """The public routes' per-address token buckets and concurrency cap (``[http.public]``,
    central/edge.py, docs/centre-security.md "The HTTP edge")."""

    enabled: bool = True
    read_per_s: float = Field(20.0, gt=0)  # status, finder, pages, static: refill per second
    read_burst: int = Field(120, ge=1)  # … and bucket size, per address (IPv6: per /64)
    act_per_s: float = Field(1.0, gt=0)  # sign-in, code, register, ticket, booking, rate
    act_burst: int = Field(30, ge=1)
    sms_per_s: float = Field(20.0, gt=0)  # /api/sms/inbound: the gateway posts from few
    sms_burst: int = Field(200, ge=1)  # addresses for all customers
    max_addresses: int = Field(65536, ge=16, le=10_000_000)  # buckets kept per kind (LRU)
    max_in_flight: int = Field(64, ge=1, le=100_000)  # public requests at once, then 503
    busy_retry_s: int = Field(1, ge=1, le=3600)  # the 503's Retry-After


class HttpSettings(_Model):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8090, ge=0, le=65535)
    # Addresses or networks of reverse proxies whose X-Forwarded-For / -Proto are believed;
    # empty: none, not even 127.0.0.1 (docs/deploy.md "Behind nginx")
    trusted_proxies: list[str] = []
    max_body_bytes: int = Field(65536, ge=1024, le=1 << 30)  # any request but media uploads
    body_timeout_s: float = Field(30.0, gt=0, le=3600)  # a body not complete in time: 408
    public: PublicLimits = PublicLimits()

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address or network (a proxy must be "
                                 "named by address; \"*\" is not allowed)") from None
        return value


class IngestSettings(_Model):
    consumers: int = Field(1, ge=1, le=64)  # consumers in this process (one MQTT client each)
    reorder_timeout_s: float = Field(3.0, gt=0)  # a gap older than this: ask for a replay
    replay_retry_s: float = Field(10.0, gt=0)  # first re-ask; doubles up to 120 s
    max_ahead: int = Field(1_000_000, ge=1)  # seq beyond mark + this: dead-lettered
    group_messages: int = Field(500, ge=1)  # messages committed in one transaction
    ack_qos: int = Field(1, ge=0, le=1)
    live_flush_s: float = Field(1.0, gt=0)  # status/live/health written at most this often
    # Bounds and per-branch limits (central/admission.py; docs/uplink.md "One branch cannot
    # starve the others"). A message costs one token per started 64 KiB.
    line_messages: int = Field(10_000, ge=10)  # received, waiting to be decoded, at most
    line_bytes: int = Field(64 * 2**20, ge=2**20)  # … and their payloads' bytes at most
    pending_messages: int = Field(2_000, ge=1)  # decoded, waiting for a commit, at most
    events_per_s: float = Field(50.0, gt=0)  # events/totals/reply messages, per branch
    events_burst: float = Field(1_000.0, ge=1)  # (a 200,000-event replay is 1,000 msgs)
    status_per_s: float = Field(5.0, gt=0)  # status + live per branch (a box: ≤ 2/s)
    status_burst: float = Field(20.0, ge=1)
    health_per_s: float = Field(1.0, gt=0)  # health per branch (a box: 1/min + changes)
    health_burst: float = Field(10.0, ge=1)
    known_branches: int = Field(20_000, ge=1)  # buckets kept for branches in the store
    unknown_branches: int = Field(1_000, ge=1)  # … and for others, least recently used


class ReconcileSettings(_Model):
    long_wait_minutes: list[int] = [15, 30, 60]  # E5 exception bands


class ReleasesSettings(_Model):
    """Software releases (central/releases.py) in the centre's store; off unless ``files``."""

    files: str | None = None  # where release bundles are kept, e.g. data/releases
    base_url: str | None = None  # how boxes reach this centre's HTTP API (default: as asked)


class SmsSettings(_Model):
    """The centre's one SMS gateway (``[sms]``, central/sms.py, docs/sms.md), for alerts,
    sign-in codes and the replies to SMS commands: ``log`` writes each message to the log
    (numbers masked) and optionally to a JSON-lines file; ``http`` calls the operator's
    gateway."""

    adapter: Literal["log", "http"] = "log"
    url: str | None = None  # http: {phone} and {text} are filled in (URL-encoded)
    method: Literal["GET", "POST"] = "POST"
    body: str = '{"to": "{phone}", "text": "{text}"}'  # POST body; {phone}, {text}
    content_type: str = "application/json; charset=utf-8"  # json: values JSON-escaped;
    # application/x-www-form-urlencoded: values URL-encoded
    headers: dict[str, str] = {}
    token: str | None = None  # http: sent as "Authorization: Bearer …"
    timeout_s: float = Field(10.0, gt=0, le=120)
    success_contains: str | None = None  # a 2xx answer must also contain this text
    outbox_file: str | None = None  # log: also append {"to" (masked), "text"} here

    @model_validator(mode="after")
    def _http_needs_url(self) -> SmsSettings:
        if self.adapter == "http" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError("the http adapter needs url = http://… or https://…")
        if self.token and any(h.lower() == "authorization" for h in self.headers):
            raise ValueError("give token or headers.Authorization, not both")
        return self


class AlertSmsSettings(_Model):
    """What an alert's SMS says (``[alerts.sms]``); how it is sent is ``[sms]``."""

    template: str = "【{branch_name}】{message}"  # the SMS text; {branch}, {branch_name}


class AlertSettings(_Model):
    enabled: bool = True
    interval_s: float = Field(5.0, gt=0, le=3600)  # rules evaluated and deliveries tried
    daily_check_at: str = Field("10:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # local time
    # after which yesterday's missing or disagreeing data raises alerts (F5)
    max_attempts: int = Field(8, ge=1, le=100)  # push / SMS tries before giving up
    sms: AlertSmsSettings = AlertSmsSettings()


class HaSettings(_Model):
    """Several centre instances on one store (central/leases.py, docs/deploy.md)."""

    lease_s: float = Field(4.0, ge=1.0, le=120.0)  # a dead holder's jobs move on after this


class RetentionSettings(_Model):
    """How long the centre keeps each grain of what the branches send (``[retention]``,
    central/store/retention.py, docs/store.md "Retention"), counted back from the centre's
    business day. A coarser grain is kept at least as long as a finer one."""

    detail_days: int = Field(400, ge=31, le=36_600)  # events and tickets
    day_days: int = Field(1_100, ge=31, le=36_600)  # day summaries and the boxes' totals
    month_years: int = Field(10, ge=1, le=100)  # month and year summaries
    records_days: int = Field(400, ge=180, le=36_600)  # audit, alerts, SMS, dead letters
    replies_days: int = Field(7, ge=1, le=36_600)  # the boxes' answers (configuration's kept)
    every_s: float = Field(6 * 3600, ge=60)  # how often the pruning job looks

    @model_validator(mode="after")
    def _coarser_lasts(self) -> RetentionSettings:
        if not self.detail_days <= self.day_days <= self.month_years * 366:
            raise ValueError("retention: detail_days <= day_days <= month_years years")
        return self


class ClockSettings(_Model):
    """The centre's one clock (built once by :class:`~central.service.Centre`). ``start``
    makes it start at that instant and run on in real time, as a box's ``clock.start``:
    demos only (the simulator's 10:00). None: the real time."""

    start: ClockStart | None = None


class CentreConfig(_Model):
    clock: ClockSettings = ClockSettings()  # what the whole centre stamps and compares with
    broker: BrokerSettings = BrokerSettings()
    store: StoreSettings = StoreSettings()
    http: HttpSettings = HttpSettings()
    ingest: IngestSettings = IngestSettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    releases: ReleasesSettings = ReleasesSettings()
    customers: CustomerSettings = CustomerSettings()  # appointments, remote, public, SMS
    alerts: AlertSettings = AlertSettings()
    web: WebSettings = WebSettings()  # users, sessions, organisation, dashboard
    sms: SmsSettings = SmsSettings()  # the one gateway: alerts, sign-in codes, SMS commands
    wechat: WeChatSettings = WeChatSettings()  # the official account (central/wechat/)
    ha: HaSettings = HaSettings()  # the leases of the jobs done once across instances
    retention: RetentionSettings = RetentionSettings()  # how long each grain is kept
    forms: dict[str, Any] = {}  # pre-filled forms for the phone page (protocols/forms.py)
    cif: CentreCifSettings = CentreCifSettings()  # who a booking's customer is (central/cif.py)

    @model_validator(mode="before")
    @classmethod
    def _old_clock_key(cls, data: Any) -> Any:
        """``customers.clock_start`` (the key before the centre had one clock) is read as
        ``clock.start`` when that is not given."""
        if not isinstance(data, dict):
            return data
        customers, clock = data.get("customers"), data.get("clock")
        old = (customers.get("clock_start") if isinstance(customers, dict)
               else getattr(customers, "clock_start", None))
        if old is not None and (clock is None or
                                (isinstance(clock, dict) and clock.get("start") is None)):
            log.warning("customers.clock_start is deprecated: set clock.start")
            return {**data, "clock": {**(clock or {}), "start": old}}
        return data

    @model_validator(mode="after")
    def _one_clock(self) -> CentreConfig:
        old = self.customers.clock_start
        if old is not None and self.clock.start != old:
            raise ValueError("customers.clock_start (deprecated) differs from clock.start")
        return self

    @model_validator(mode="after")
    def _forms(self) -> CentreConfig:
        self.form_settings  # noqa: B018 - parsed now: a bad [forms] is refused at load
        return self

    @property
    def form_settings(self) -> FormSettings:
        """The ``[forms]`` section, parsed once: the phone page's forms (I2)."""
        return settings_of(self.__dict__, self.forms)

    @model_validator(mode="before")
    @classmethod
    def _old_sms_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data, _ = migrate_sms_keys(data)
        return data


# Sending keys read from [alerts.sms] and [customers.sms] before the centre had one [sms]
# section: still accepted (with a warning) and read as the [sms] key they became.
_OLD_SMS_KEYS: dict[str, dict[str, str]] = {
    "alerts": {k: k for k in ("adapter", "url", "method", "body", "content_type", "headers",
                              "timeout_s", "success_contains")},
    "customers": {"gateway": "adapter", "url": "url", "token": "token",
                  "outbox_file": "outbox_file", "timeout_s": "timeout_s"},
}


def migrate_sms_keys(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Move the old sending keys of ``[alerts.sms]`` and ``[customers.sms]`` to ``[sms]``.

    Returns the config data with them moved (``data`` itself is not changed) and which
    ``sms.*`` key came from which old key. An old key that disagrees with ``[sms]`` or with
    the other old section raises :class:`CentreConfigError` naming it.
    """
    out = dict(data)
    moved: dict[str, str] = {}
    for section, keys in _OLD_SMS_KEYS.items():
        part = out.get(section)
        old = part.get("sms") if isinstance(part, dict) else None
        if not isinstance(old, dict) or not keys.keys() & old.keys():
            continue
        assert isinstance(part, dict)
        old = dict(old)
        out[section] = {**part, "sms": old}
        target = out.get("sms", {})
        if not isinstance(target, dict):
            raise CentreConfigError("sms", "must be a table")
        target = out["sms"] = dict(target)
        for old_key, new_key in keys.items():
            if old_key not in old:
                continue
            where, value = f"{section}.sms.{old_key}", old.pop(old_key)
            if new_key in target and target[new_key] != value:
                raise CentreConfigError(where, f"differs from sms.{new_key}: the centre has "
                                        "one SMS gateway, set it once in [sms]")
            target[new_key] = value
            moved[f"sms.{new_key}"] = where
            log.warning("%s is read as sms.%s: move it to [sms] (docs/sms.md)", where, new_key)
    return out, moved


def load_centre_config(path: str | Path | None, overrides: Iterable[str] = ()) -> CentreConfig:
    """Read the TOML file (none: defaults), apply ``--set`` overrides, validate."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CentreConfigError("(file)", f"{path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise CentreConfigError("(syntax)", str(exc)) from None
    try:
        apply_overrides(data, overrides)
    except ConfigError as exc:
        raise CentreConfigError(exc.key, exc.problem) from None
    data, moved = migrate_sms_keys(data)
    try:
        return CentreConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _old_key(".".join(str(p) for p in err["loc"]) or "(root)", moved)
        raise CentreConfigError(key, err["msg"].removeprefix("Value error, ")) from None


def _old_key(key: str, moved: dict[str, str]) -> str:
    """A bad ``sms`` value named by the old key it was given as (``alerts.sms.url``)."""
    if key in moved:
        return moved[key]
    if key == "sms":
        sections = {old.rsplit(".", 1)[0] for old in moved.values()}
        if len(sections) == 1:
            return sections.pop()
    return key
