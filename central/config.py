"""The centre's configuration: broker, store, HTTP, ingest and reconciliation settings.

A TOML file (``examples/centre.toml``), every key overridable with ``--set key.path=value``
like the box's. A bad value raises :class:`CentreConfigError` naming the key.
"""

from __future__ import annotations

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

from controller.config import apply_overrides
from controller.errors import ConfigError
from protocols.uplink import parse_broker_url

from .customer_settings import CustomerSettings
from .errors import CentreConfigError
from .settings import WebSettings

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

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parse_broker_url(value)
        return value


class StoreSettings(_Model):
    url: str = "sqlite:///data/centre.sqlite3"  # or postgresql://user@host:5432/db


class HttpSettings(_Model):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8090, ge=0, le=65535)


class IngestSettings(_Model):
    consumers: int = Field(1, ge=1, le=64)  # consumers in this process (one MQTT client each)
    reorder_timeout_s: float = Field(3.0, gt=0)  # a gap older than this: ask for a replay
    replay_retry_s: float = Field(10.0, gt=0)  # first re-ask; doubles up to 120 s
    max_ahead: int = Field(1_000_000, ge=1)  # seq beyond mark + this: dead-lettered
    group_messages: int = Field(500, ge=1)  # messages committed in one transaction
    ack_qos: int = Field(1, ge=0, le=1)
    live_flush_s: float = Field(1.0, gt=0)  # status/live/health written at most this often


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


class CentreConfig(_Model):
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
