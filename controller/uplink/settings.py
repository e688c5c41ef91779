"""The ``[uplink]`` section of a branch config (validated with ``section(config, "uplink")``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocols.uplink import MAX_BATCH_EVENTS, parse_broker_url

__all__ = ["MAX_BROKERS", "UplinkSettings"]

MAX_BROKERS = 8  # addresses in uplink.broker, at most


class UplinkSettings(BaseModel):
    """How the box reaches the centre's broker. Only ``broker`` is required.

    ``--set uplink.broker=mqtt://HOST:PORT --set uplink.password=…``; the user name
    defaults to the branch code (the broker's ACL keys on it). ``broker`` may also be a
    list (``uplink.broker = ["mqtt://a:1883", "mqtt://b:1883"]``): the box connects to
    one at a time and moves to the next when it cannot reach or loses the one it is on
    (docs/uplink.md, "Several brokers").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    broker: str | list[str]
    username: str | None = None  # default: the branch code
    password: str | None = None
    client_id: str | None = None  # default: paidui-box-{branch}
    ca_file: str | None = None  # CA bundle for mqtts://
    keepalive_s: int = Field(30, ge=5, le=3600)
    session_expiry_s: int = Field(7 * 86400, ge=0)  # commands wait this long for the box
    batch_size: int = Field(200, ge=1, le=MAX_BATCH_EVENTS)  # events per message
    window: int = Field(5000, ge=1)  # events sent and not yet acknowledged, at most
    ack_timeout_s: float = Field(20.0, gt=0)  # no ack progress this long: send again
    ack_persist_s: float = Field(2.0, ge=0)  # acks stored in the journal at most this often
    publish_timeout_s: float = Field(10.0, gt=0)
    idle_look_s: float = Field(5.0, gt=0)  # the sender looks at the journal at least this often
    reconnect_min_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(60.0, gt=0)
    live_interval_s: float = Field(0.5, ge=0.05)  # live snapshots at most 1/this per second
    health_interval_s: float = Field(60.0, gt=0)
    totals_at: str = Field("00:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")  # local time
    totals_days: int = Field(7, ge=1, le=90)  # how far back unsent totals are caught up
    check_every_s: float = Field(30.0, gt=0)  # the totals schedule's tick
    command_queue: int = Field(64, ge=1, le=10000)  # centre commands waiting, at most

    @field_validator("broker")
    @classmethod
    def _broker(cls, value: str | list[str]) -> str | list[str]:
        urls = [value] if isinstance(value, str) else value
        if not urls or len(urls) > MAX_BROKERS:
            raise ValueError(f"give 1 to {MAX_BROKERS} broker addresses")
        if len(set(urls)) != len(urls):
            raise ValueError("a broker address is listed twice")
        for url in urls:
            parse_broker_url(url)
        return value

    @property
    def brokers(self) -> tuple[str, ...]:
        """Every broker address, in the order they are tried."""
        return (self.broker,) if isinstance(self.broker, str) else tuple(self.broker)
