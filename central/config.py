"""The centre's configuration: broker, store, HTTP, ingest and reconciliation settings.

A TOML file (``examples/centre.toml``), every key overridable with ``--set key.path=value``
like the box's. A bad value raises :class:`CentreConfigError` naming the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from controller.config import apply_overrides
from controller.errors import ConfigError
from protocols.uplink import parse_broker_url

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


class CentreConfig(_Model):
    broker: BrokerSettings = BrokerSettings()
    store: StoreSettings = StoreSettings()
    http: HttpSettings = HttpSettings()
    ingest: IngestSettings = IngestSettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    releases: ReleasesSettings = ReleasesSettings()
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
