"""The centre's configuration: broker, store, HTTP, ingest and reconciliation settings.

A TOML file (``examples/centre.toml``), every key overridable with ``--set key.path=value``
like the box's. A bad value raises :class:`CentreConfigError` naming the key.
"""

from __future__ import annotations

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

__all__ = ["CentreConfig", "load_centre_config"]


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
    """The SMS gateway (docs/alerts.md): ``log`` writes each message to the log (numbers
    masked); ``http`` calls the operator's gateway."""

    adapter: Literal["log", "http"] = "log"
    url: str | None = None  # http: {phone} and {text} are filled in (URL-encoded)
    method: Literal["GET", "POST"] = "POST"
    body: str = '{"to": "{phone}", "text": "{text}"}'  # POST body; {phone}, {text}
    content_type: str = "application/json; charset=utf-8"  # json: values JSON-escaped;
    # application/x-www-form-urlencoded: values URL-encoded
    headers: dict[str, str] = {}
    timeout_s: float = Field(5.0, gt=0, le=120)
    success_contains: str | None = None  # a 2xx answer must also contain this text
    template: str = "【{branch_name}】{message}"  # the SMS text; {branch}, {branch_name}

    @model_validator(mode="after")
    def _http_needs_url(self) -> SmsSettings:
        if self.adapter == "http" and not (self.url or "").startswith(("http://", "https://")):
            raise ValueError("the http adapter needs url = http://… or https://…")
        return self


class AlertSettings(_Model):
    enabled: bool = True
    interval_s: float = Field(5.0, gt=0, le=3600)  # rules evaluated and deliveries tried
    daily_check_at: str = Field("10:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # local time
    # after which yesterday's missing or disagreeing data raises alerts (F5)
    max_attempts: int = Field(8, ge=1, le=100)  # push / SMS tries before giving up
    sms: SmsSettings = SmsSettings()


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
    try:
        return CentreConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        raise CentreConfigError(key, err["msg"].removeprefix("Value error, ")) from None
