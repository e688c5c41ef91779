"""The ``[rs485]`` config section and the devices it puts on the bus.

Example (all keys optional; the bus is only started with ``hardware = "sim"`` or a ``port``)::

    [rs485]
    profile = "legacy68"          # or "modbus"
    port = "/dev/ttyUSB0"         # --set rs485.port=/dev/ttyUSB0
    baudrate = 9600

Each window's ``keypad``, ``display`` and ``evaluator`` address (default: the window number)
is the device's address in its own kind. On the wire the address is ``address + offset``
of its kind: the 68-frame profile tells kinds apart by command, so its offsets default to 0;
Modbus has one address space, so displays default to 100 + n and evaluators to 200 + n.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from common.errors import ConfigError
from controller.config import Config, section

from .devices import KINDS, Device, Kind

__all__ = ["Offsets", "Rs485Settings", "bus_devices", "load_settings"]

Profile = Literal["legacy68", "modbus"]

_DEFAULT_OFFSETS: dict[str, dict[Kind, int]] = {
    "legacy68": {"keypad": 0, "display": 0, "evaluator": 0},
    "modbus": {"keypad": 0, "display": 100, "evaluator": 200},
}
_WIRE_RANGE = {"legacy68": (1, 254), "modbus": (1, 247)}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Offsets(_Model):
    keypad: int = Field(0, ge=0, le=254)
    display: int = Field(0, ge=0, le=254)
    evaluator: int = Field(0, ge=0, le=254)


class Rs485Settings(_Model):
    """What the bus master needs to know; see docs/rs485.md for each key."""

    profile: Profile = "legacy68"
    port: str | None = None  # None: the simulator's pty when hardware = "sim"
    baudrate: int = Field(9600, ge=300, le=4_000_000)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    kernel_rs485: Literal["auto", "on", "off"] = "auto"  # the kernel drives RTS (TIOCSRS485)
    local_echo: bool = False  # the adapter hears its own transmissions: drop them
    kinds: list[Kind] = list(KINDS)  # which kinds of device are on this bus
    display: Literal["digits", "text"] = "digits"  # 68-frame displays: 7-segment or LED matrix
    keypad_display: Literal["digits", "text"] = "digits"
    offsets: Offsets | None = None  # None: the profile's defaults
    answer_ms: float = Field(50.0, gt=0, le=5000)  # a device's time to answer, past wire time
    device_answer_ms: dict[str, float] = {}  # per device, e.g. {"display.3" = 200}
    retries: int = Field(2, ge=0, le=10)  # extra tries of a screen or beep a device missed
    offline_after: int = Field(3, ge=1, le=100)  # consecutive misses before "offline"
    heartbeat_s: float = Field(5.0, gt=0)  # a quiet device is polled this often (and offline ones)
    evaluators_per_round: int = Field(4, ge=1, le=64)  # Modbus: prompting evaluators a round
    dedupe_s: float = Field(1.0, ge=0)  # a 68-frame key frame repeated within this is a resend
    evaluator_prompt: Literal["always", "asked"] = "always"  # after every finish, or only 评价
    prompt_text: str = "请您对本次服务做出评价"
    thanks_text: str = "谢谢您对我们工作的支持,再见"
    settle_ms: float = Field(15.0, ge=0, le=200)  # after a key, wait this long for its screen
    message_s: float = Field(3.0, gt=0)  # a refusal stays on the keypad this long
    thanks_s: float = Field(5.0, gt=0)  # the evaluator's thank-you stays this long

    @field_validator("kinds")
    @classmethod
    def _no_repeats(cls, kinds: list[Kind]) -> list[Kind]:
        if len(set(kinds)) != len(kinds):
            raise ValueError("a kind is listed twice")
        return kinds

    @field_validator("device_answer_ms")
    @classmethod
    def _device_names(cls, value: dict[str, float]) -> dict[str, float]:
        for name, ms in value.items():
            kind, _, address = name.partition(".")
            if kind not in KINDS or not address.isdigit() or not 0 < ms <= 5000:
                raise ValueError(f"{name!r} = {ms}: expected e.g. \"display.3\" = 1–5000 ms")
        return value

    @property
    def bits_per_char(self) -> int:
        return 1 + 8 + (0 if self.parity == "N" else 1) + self.stopbits

    @property
    def byte_time(self) -> float:
        """Seconds one character takes on the wire."""
        return self.bits_per_char / self.baudrate

    def offset(self, kind: Kind) -> int:
        offsets = self.offsets.model_dump() if self.offsets else _DEFAULT_OFFSETS[self.profile]
        return int(offsets[kind])


def load_settings(config: Config) -> Rs485Settings:
    """The validated ``[rs485]`` section; raises ConfigError naming the key."""
    return section(config, "rs485", Rs485Settings)


def bus_devices(config: Config, settings: Rs485Settings) -> list[Device]:
    """Every device the config puts on the bus, with its wire address; checked for clashes."""
    low, high = _WIRE_RANGE[settings.profile]
    devices: list[Device] = []
    seen: dict[tuple[str, int], str] = {}
    for i, window in enumerate(config.windows):
        for kind in settings.kinds:
            address = getattr(window, kind)
            key = f"windows.{i}.{kind}"
            wire = address + settings.offset(kind)
            if not low <= wire <= high:
                raise ConfigError(key, f"bus address {wire} (= {address} + offset "
                                  f"{settings.offset(kind)}) is outside {low}–{high} "
                                  f"on a {settings.profile} bus")
            # 68-frame commands say which kind a frame is for; Modbus has one unit space.
            slot = (kind if settings.profile == "legacy68" else "unit", wire)
            if slot in seen:
                raise ConfigError(key, f"bus address {wire} is also {seen[slot]}'s")
            seen[slot] = f"{kind}.{address}"
            answer = settings.device_answer_ms.get(f"{kind}.{address}", settings.answer_ms)
            devices.append(Device(kind, address, wire, window.number, answer / 1000))
    return devices
