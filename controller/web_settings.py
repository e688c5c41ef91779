"""The ``[web]`` config section: staff logins and how the branch's screens look.

Validated with :func:`controller.config.section`, so a bad value fails at start naming its
key (``web.kiosk.buttons.0.target``). Colours, fonts and file names end up in CSS and URLs,
so each is held to a strict pattern rather than escaped later.

.. code-block:: toml

    [web]
    session_hours = 12
    [[web.lobby_managers]]
    id = "lm1"
    name = "赵经理"
    password_hash = "scrypt$..."     # python -m controller hash-password
    [web.kiosk]                      # SPEC A10: the kiosk screen of this branch
    columns = 2
    banner = "欢迎光临……"
    [[web.kiosk.buttons]]
    target = "A"                     # a queue id or a menu id
    colour = "#c0392b"
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from common.errors import ConfigError

from .config import Config, TellerConfig, section

__all__ = [
    "CallerSettings",
    "HallSettings",
    "KioskButton",
    "KioskLayout",
    "LobbyManager",
    "WebSettings",
    "web_settings",
]

COLOUR = r"^(#[0-9a-fA-F]{3,8}|[a-z]{3,20}|transparent)$"
FONT = r"^[A-Za-z0-9 ,\-]{1,120}$"
FILE = r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,120}$"
HOTKEY = (r"^((Ctrl|Alt|Shift)\+){0,3}"
          r"(F([1-9]|1[0-2])|[A-Z0-9]|Enter|Space|Escape|Insert|Delete|Home|End|PageUp|PageDown)$")
CALLER_ACTIONS = (
    "call_next", "recall", "no_show", "finish", "transfer", "pause", "hold", "call_back",
    "insert_front", "mode",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LobbyManager(TellerConfig):
    """A lobby manager (大堂经理) who may log in to the lobby-manager page: an id, a name
    and a scrypt password hash, checked like a teller's (``keypad_code`` is unused)."""


class KioskButton(_Model):
    """One button on the kiosk's first screen: a business, a menu or a hint (A10)."""

    target: str = Field(pattern=r"^[A-Za-z0-9_]{1,16}$")  # queue id or menu id
    label: str = Field("", max_length=40)  # default: the queue's or menu's name
    label_en: str = Field("", max_length=60)
    colour: str | None = Field(None, pattern=COLOUR)
    text_colour: str | None = Field(None, pattern=COLOUR)
    row: int | None = Field(None, ge=1, le=12)  # grid position; None: flows in order
    col: int | None = Field(None, ge=1, le=6)
    col_span: int = Field(1, ge=1, le=6)
    row_span: int = Field(1, ge=1, le=6)


class KioskLayout(_Model):
    """The kiosk screen (取号主界面): buttons, menus, colours, fonts, media, banner (A10)."""

    title: str = Field("欢迎光临", max_length=40)
    title_en: str = Field("Welcome", max_length=60)
    columns: int = Field(2, ge=1, le=6)
    buttons: list[KioskButton] = []  # empty: queues without a parent, then the menus
    background: str = Field("#0b3d6e", pattern=COLOUR)
    background_image: str = Field("", pattern=r"^$|" + FILE[1:])  # a file of the media folder
    text_colour: str = Field("#ffffff", pattern=COLOUR)
    button_colour: str = Field("#1e6fbf", pattern=COLOUR)
    button_text_colour: str = Field("#ffffff", pattern=COLOUR)
    accent: str = Field("#ffcc00", pattern=COLOUR)
    font_family: str = Field("Noto Sans CJK SC, Noto Sans SC, sans-serif", pattern=FONT)
    font_scale: float = Field(1.0, ge=0.5, le=3.0)
    media: list[str] = []  # files of the media folder, in order; empty: all of them
    media_seconds: float = Field(8.0, ge=1, le=600)  # how long an image stays
    media_position: Literal["top", "middle", "bottom", "none"] = "middle"
    banner: str = Field("", max_length=400)
    banner_en: str = Field("", max_length=600)
    banner_speed: float = Field(80.0, ge=10, le=600)  # pixels per second
    result_seconds: float = Field(10.0, ge=2, le=120)  # the ticket shown, then back to start
    refusal_seconds: float = Field(8.0, ge=2, le=120)
    card_entry: bool = True  # 刷卡取号 (A5)
    appointment_entry: bool = True  # 预约取号 (A6)

    @field_validator("media")
    @classmethod
    def _files(cls, names: list[str]) -> list[str]:
        bad = [n for n in names if not re.match(FILE, n)]
        if bad:
            raise ValueError(f"not a plain file name of the media folder: {bad[0]!r}")
        return names


class CallerSettings(_Model):
    """The soft caller (软呼叫器, B6): starting mode and hotkeys."""

    mode: Literal["standard", "compact", "hidden"] = "standard"
    ask_rating: bool = True  # finishing asks the evaluator for a rating
    hotkeys: dict[str, str] = {
        "call_next": "F1", "recall": "F2", "finish": "F3", "no_show": "F4",
        "hold": "F6", "call_back": "F7", "transfer": "F8", "pause": "F9",
        "insert_front": "F10", "mode": "Alt+H",
    }

    @field_validator("hotkeys")
    @classmethod
    def _keys(cls, keys: dict[str, str]) -> dict[str, str]:
        for action, key in keys.items():
            if action not in CALLER_ACTIONS:
                raise ValueError(f"unknown action {action!r}; known: {list(CALLER_ACTIONS)}")
            if not re.match(HOTKEY, key):
                raise ValueError(f"{action}: {key!r} is not a key like 'F1' or 'Ctrl+Shift+N'")
        if len(set(keys.values())) != len(keys):
            raise ValueError("two actions share a hotkey")
        return keys


class HallSettings(_Model):
    """The hall display (综合屏, B8)."""

    title: str = Field("", max_length=40)  # default: the branch's name
    calls_shown: int = Field(6, ge=1, le=20)
    columns_when_serving: int = Field(3, ge=1, le=99)  # a column per window from this many
    highlight_seconds: float = Field(10.0, ge=1, le=120)
    voice_wait_seconds: float = Field(20.0, ge=1, le=300)  # a call the voice never speaks
    banner: str = Field("", max_length=400)
    banner_en: str = Field("", max_length=600)
    banner_speed: float = Field(80.0, ge=10, le=600)
    background: str = Field("#061a33", pattern=COLOUR)
    accent: str = Field("#ffcc00", pattern=COLOUR)


class WebSettings(_Model):
    """The whole ``[web]`` section."""

    session_hours: float = Field(12.0, gt=0, le=24 * 14)
    login_attempts: int = Field(5, ge=1, le=100)  # free failures per address and account
    login_window_s: float = Field(300.0, gt=0)  # quiet seconds that forget them (docs/api.md)
    ping_seconds: float = Field(15.0, ge=0.2, le=300)  # heartbeat on the event stream
    media_dir: str = ""  # "": <data dir>/media; relative paths from the working directory
    lobby_managers: list[LobbyManager] = []
    kiosk: KioskLayout = KioskLayout()
    caller: CallerSettings = CallerSettings()
    hall: HallSettings = HallSettings()

    def media_path(self, data_dir: Path) -> Path:
        return Path(self.media_dir) if self.media_dir else data_dir / "media"


def web_settings(config: Config) -> WebSettings:
    """Validate ``[web]`` against the rest of the config; raise :class:`ConfigError`."""
    web = section(config, "web", WebSettings)
    queues = {q.id for q in config.queues}
    menus = {m.id for m in config.menus}
    for i, b in enumerate(web.kiosk.buttons):
        if b.target not in queues | menus:
            raise ConfigError(f"web.kiosk.buttons.{i}.target", f"no queue or menu {b.target!r}")
    ids = [m.id for m in web.lobby_managers]
    if len(set(ids)) != len(ids):
        raise ConfigError("web.lobby_managers", "a lobby manager id appears twice")
    return web
