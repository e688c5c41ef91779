"""The hall display (综合屏, SPEC B8): latest calls and waiting counts, drawn with pillow.

Frames are rendered for LED or HDMI panels of any size and written to an output:

* :class:`PngOutput` writes ``latest.png`` atomically (the simulator:
  ``<data-dir>/sim/hall/latest.png``) — for LED controllers that take an image file,
  for remote viewing, and for tests;
* :class:`FramebufferOutput` writes straight into a Linux framebuffer (``/dev/fb0``,
  16-bit RGB565 or 32-bit XRGB as the panel's driver reports in sysfs) — an HDMI panel
  or an LED receiving card fed from the Pi's HDMI shows it with no X server or browser.

Two layouts: **quiet** — the newest call large and highlighted, earlier calls listed
below; **busy** (``busy_waiting`` or more customers waiting) — a column per window with
its current number, the newest call highlighted. A strip at the bottom shows the
number waiting per business.

With the voice (:class:`~controller.voice.Announcer`, seen through the
:class:`~controller.ports.Announcements` port), a call appears when its announcement
*starts*, so the screen and the voice change together. Chinese needs a CJK font: the config's
``font``, else Noto Sans CJK / WenQuanYi / AR PL are looked for, then ``fc-match``;
without one the display falls back to pillow's font and reports a health warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import math
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from PIL import Image, ImageChops, ImageDraw, ImageFont
from pydantic import BaseModel, ConfigDict, Field

from common.tasks import wait_at_most

if TYPE_CHECKING:
    from controller.config import Config
    from controller.engine import State
    from controller.ports import Announcement, Announcements, Host

__all__ = [
    "FontChoice",
    "FrameOutput",
    "FramebufferOutput",
    "HallCall",
    "HallDisplay",
    "HallDisplayConfig",
    "HallView",
    "Layout",
    "PngOutput",
    "Theme",
    "WindowView",
    "find_cjk_font",
    "framebuffer_bytes",
    "hall_view",
    "render",
]

log = logging.getLogger(__name__)

RGB = tuple[int, int, int]


class Theme(BaseModel):
    """Colours (LED panels look best with a black background)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    background: RGB = (0, 0, 0)
    text: RGB = (235, 235, 235)
    header_bg: RGB = (0, 48, 110)
    header_text: RGB = (255, 255, 255)
    highlight_bg: RGB = (190, 0, 0)
    highlight_text: RGB = (255, 230, 0)
    dim_text: RGB = (150, 150, 150)
    waiting_bg: RGB = (20, 20, 20)
    waiting_text: RGB = (0, 220, 90)


class HallDisplayConfig(BaseModel):
    """The ``hall_display`` config section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    width: int = Field(1920, ge=64, le=7680)
    height: int = Field(1080, ge=32, le=4320)
    output: Literal["png", "framebuffer"] = "png"
    path: str = ""  # png file; "" = <data-dir>/hall/latest.png (simulator: sim/hall/)
    framebuffer: str = "/dev/fb0"
    font: str = ""  # a CJK font file; "" = look for one
    title: str = ""  # "" = the branch's name
    latest: int = Field(6, ge=1, le=20)  # calls listed in the quiet layout
    busy_waiting: int = Field(10, ge=0)  # a column per window from this many waiting (0: always)
    follow_voice: bool = True  # show a call when its announcement starts
    min_interval_s: float = Field(0.2, ge=0, le=60)
    theme: Theme = Theme()


# --- what is shown (pure) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HallCall:
    number: str
    window: int
    at: float


@dataclass(frozen=True, slots=True)
class WindowView:
    number: int
    label: str  # "3号窗口"
    current: str | None  # number being served, as announced
    state: Literal["serving", "idle", "paused", "closed"]


@dataclass(frozen=True, slots=True)
class HallView:
    """Everything on one frame; :func:`render` draws it."""

    title: str
    time_text: str
    calls: list[HallCall]  # newest first
    windows: list[WindowView]
    waiting: list[tuple[str, int]]  # (business name, waiting)
    busy: bool


def hall_view(state: State, cfg: Config, settings: HallDisplayConfig, calls: list[HallCall],
              now: float) -> HallView:
    """The view of the branch now: ``calls`` are those shown so far (newest first)."""
    shown: dict[int, str] = {}  # the number last shown (announced) at each window
    for call in reversed(calls):
        shown[call.window] = call.number
    windows = []
    for wc in cfg.windows:
        ws = state.window(wc.number)
        cur = state.tickets.get(ws.current) if ws.current else None
        status: Literal["serving", "idle", "paused", "closed"] = (
            "closed" if ws.teller is None else "paused" if ws.paused
            else "serving" if cur is not None else "idle")
        # a call not yet announced stays blank: the screen changes with the voice
        current = cur.number if cur is not None and shown.get(wc.number) == cur.number else None
        windows.append(WindowView(wc.number, f"{wc.number}号窗口", current, status))
    waiting = [(q.name, state.waiting_count.get(q.id, 0)) for q in cfg.queues]
    local = dt.datetime.fromtimestamp(now, cfg.tz)
    return HallView(
        title=settings.title or cfg.branch.name,
        time_text=local.strftime("%Y-%m-%d %H:%M"),
        calls=calls[: settings.latest],
        windows=windows,
        waiting=waiting,
        busy=state.waiting_total >= settings.busy_waiting,
    )


# --- fonts ----------------------------------------------------------------------------------


_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


@dataclass(frozen=True, slots=True)
class FontChoice:
    path: str | None  # None: pillow's built-in font (no Chinese)
    index: int = 0

    def at(self, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        return _font_at(self.path, self.index, size)


@functools.lru_cache(maxsize=64)
def _font_at(path: str | None, index: int, size: int
             ) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Loading a CJK collection takes milliseconds: keep the sizes a frame uses."""
    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(path, size, index=index)


def _draws_chinese(path: str, index: int) -> bool:
    """True if the font has a glyph for 号 (not the box of a missing glyph)."""
    try:
        font = ImageFont.truetype(path, 24, index=index)
    except OSError:
        return False
    return bytes(font.getmask("号")) != bytes(font.getmask("\U0010fffd"))


def _simplified_index(path: str) -> int:
    """In a .ttc collection, the face for Simplified Chinese (Noto: "… CJK SC")."""
    for i in range(10):
        try:
            family = ImageFont.truetype(path, 12, index=i).getname()[0] or ""
        except OSError:
            break
        if family.endswith((" SC", " CN")):
            return i
    return 0


def find_cjk_font(explicit: str = "") -> FontChoice:
    """The font for Chinese text: ``explicit`` if it works, else one found on the system."""
    paths = [explicit] if explicit else []
    paths += [p for p in _CANDIDATES if os.path.exists(p)]
    fc = shutil.which("fc-match")
    if fc:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            found = subprocess.run([fc, "-f", "%{file}", "sans-serif:lang=zh-cn"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            if found:
                paths.append(found)
    for path in paths:
        index = _simplified_index(path) if path.endswith(".ttc") else 0
        if _draws_chinese(path, index):
            if explicit and path != explicit:
                log.warning("hall display: font %s cannot draw Chinese, using %s", explicit, path)
            return FontChoice(path, index)
    log.warning("hall display: no CJK font found (apt-get install fonts-noto-cjk); "
                "Chinese text will not show")
    return FontChoice(None)


# --- drawing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    """Where things go on a frame of ``width`` × ``height``; (left, top, right, bottom)."""

    width: int
    height: int

    @property
    def header(self) -> tuple[int, int, int, int]:
        return (0, 0, self.width, round(self.height * 0.12))

    @property
    def footer(self) -> tuple[int, int, int, int]:
        return (0, self.height - round(self.height * 0.12), self.width, self.height)

    @property
    def body(self) -> tuple[int, int, int, int]:
        return (0, self.header[3], self.width, self.footer[1])

    @property
    def highlight(self) -> tuple[int, int, int, int]:
        """Quiet layout: the newest call's box."""
        left, top, right, bottom = self.body
        pad = max(2, self.height // 60)
        return (left + pad, top + pad, right - pad, top + round((bottom - top) * 0.42))

    def rows(self, n: int) -> list[tuple[int, int, int, int]]:
        """Quiet layout: boxes for the earlier calls, two per line."""
        left, _, right, bottom = self.body
        top = self.highlight[3]
        lines = max(1, math.ceil(n / 2))
        h = (bottom - top) / lines
        mid = (left + right) // 2
        return [(left if i % 2 == 0 else mid, round(top + (i // 2) * h),
                 mid if i % 2 == 0 else right, round(top + (i // 2 + 1) * h)) for i in range(n)]

    def columns(self, n: int) -> list[tuple[int, int, int, int]]:
        """Busy layout: a cell per window, up to 8 across."""
        left, top, right, bottom = self.body
        across = min(n, 8) or 1
        down = math.ceil(n / across) or 1
        w, h = (right - left) / across, (bottom - top) / down
        return [(round(left + (i % across) * w), round(top + (i // across) * h),
                 round(left + (i % across + 1) * w), round(top + (i // across + 1) * h))
                for i in range(n)]


class _Painter:
    def __init__(self, img: Image.Image, font: FontChoice) -> None:
        self.draw = ImageDraw.Draw(img)
        self.font = font

    def _font(self, size: int) -> Any:
        return self.font.at(size)

    def fits(self, box: tuple[int, int, int, int], text: str, fill: float) -> bool:
        """Whether ``text`` fits the box's width at ``fill`` of its height."""
        size = max(6, int((box[3] - box[1]) * fill))
        return self.draw.textlength(text, font=self._font(size)) <= (box[2] - box[0]) * 0.94

    def text(self, box: tuple[int, int, int, int], text: str, colour: RGB, *,
             fill: float = 0.7, align: str = "center") -> None:
        """Draw ``text`` as large as fits ``fill`` of the box, centred vertically."""
        left, top, right, bottom = box
        size = max(6, int((bottom - top) * fill))
        font = self._font(size)
        width = self.draw.textlength(text, font=font)
        if width > (right - left) * 0.94:
            size = max(6, int(size * (right - left) * 0.94 / width))
            font, width = self._font(size), self.draw.textlength(text, font=self._font(size))
        x = {"center": (left + right - width) / 2, "left": left + (bottom - top) * 0.15,
             "right": right - width - (bottom - top) * 0.15}[align]
        y = (top + bottom) / 2
        self.draw.text((x, y), text, fill=colour, font=font, anchor="lm")

    def box(self, box: tuple[int, int, int, int], colour: RGB) -> None:
        self.draw.rectangle(box, fill=colour)


DEFAULT_THEME = Theme()


def render(view: HallView, width: int, height: int, font: FontChoice,
           theme: Theme = DEFAULT_THEME) -> Image.Image:
    """Draw one frame of the hall display."""
    img = Image.new("RGB", (width, height), theme.background)
    p, lay = _Painter(img, font), Layout(width, height)
    p.box(lay.header, theme.header_bg)
    h = lay.header
    p.text((h[0], h[1], h[2] * 2 // 3, h[3]), view.title, theme.header_text, align="left")
    p.text((h[2] * 2 // 3, h[1], h[2], h[3]), view.time_text, theme.header_text, fill=0.5,
           align="right")
    if view.busy:
        _draw_columns(p, lay, view, theme)
    else:
        _draw_latest(p, lay, view, theme)
    _draw_waiting(p, lay, view, theme)
    return img


def _draw_latest(p: _Painter, lay: Layout, view: HallView, theme: Theme) -> None:
    if not view.calls:
        p.text(lay.highlight, "欢迎光临", theme.dim_text, fill=0.4)
        return
    newest, *older = view.calls
    p.box(lay.highlight, theme.highlight_bg)
    p.text(lay.highlight, f"请 {newest.number} 号到 {newest.window} 号窗口",
           theme.highlight_text, fill=0.5)
    rows = lay.rows(max(len(older), 2))
    for call, row in zip(older, rows, strict=False):
        p.text(row, f"{call.number}  →  {call.window}号窗口", theme.text, fill=0.5)


def _draw_columns(p: _Painter, lay: Layout, view: HallView, theme: Theme) -> None:
    newest = view.calls[0] if view.calls else None
    pad = max(1, lay.height // 200)
    for w, cell in zip(view.windows, lay.columns(len(view.windows)), strict=True):
        left, top, right, bottom = cell
        inner = (left + pad, top + pad, right - pad, bottom - pad)
        label = (inner[0], inner[1], inner[2], inner[1] + (inner[3] - inner[1]) // 4)
        body = (inner[0], label[3], inner[2], inner[3])
        hot = newest is not None and w.current == newest.number and w.number == newest.window
        p.box(inner, theme.highlight_bg if hot else theme.waiting_bg)
        p.text(label, w.label, theme.dim_text if not hot else theme.highlight_text, fill=0.6)
        text = {"serving": w.current or "", "idle": "", "paused": "暂停服务",
                "closed": "暂停服务"}[w.state]
        colour = theme.highlight_text if hot else theme.text
        p.text(body, text, colour, fill=0.45 if w.state == "serving" else 0.25)


def _draw_waiting(p: _Painter, lay: Layout, view: HallView, theme: Theme) -> None:
    p.box(lay.footer, theme.waiting_bg)
    text = "   ".join(f"{name} 等候 {n} 人" for name, n in view.waiting)
    if not p.fits(lay.footer, text, 0.3):  # a small LED panel: the short form
        text = " ".join(f"{name[:2]}{n}" for name, n in view.waiting)
    p.text(lay.footer, text, theme.waiting_text, fill=0.45)


# --- outputs ------------------------------------------------------------------------------------


class FrameOutput(Protocol):
    """Where frames go."""

    async def write(self, frame: Image.Image) -> None: ...


class PngOutput:
    """Writes each frame to ``path`` as PNG, atomically (write aside, then rename)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    async def write(self, frame: Image.Image) -> None:
        await asyncio.to_thread(self._save, frame)

    def _save(self, frame: Image.Image) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.png")
        frame.save(tmp, "PNG", optimize=False, compress_level=1)
        os.replace(tmp, self.path)


def framebuffer_bytes(frame: Image.Image, width: int, height: int, bpp: int,
                      stride: int | None = None) -> bytes:
    """A frame as a framebuffer's pixels: RGB565 (16 bpp) or XRGB little-endian (32 bpp)."""
    img = frame.convert("RGB")
    if img.size != (width, height):
        img = img.resize((width, height))
    if bpp == 16:
        raw = _rgb565(img)
    elif bpp == 32:
        raw = img.convert("RGBA").tobytes("raw", "BGRA")
    elif bpp == 24:
        raw = img.tobytes("raw", "BGR")
    else:
        raise ValueError(f"framebuffers of {bpp} bits per pixel are not supported")
    line = width * bpp // 8
    if stride is None or stride == line:
        return raw
    pad = bytes(stride - line)
    return b"".join(raw[y * line:(y + 1) * line] + pad for y in range(height))


def _rgb565(img: Image.Image) -> bytes:
    """RGB565 little-endian: low byte gggbbbbb, high byte rrrrrggg (bit ops per channel)."""
    r, g, b = img.split()
    low = ImageChops.add(g.point(lambda v: ((v >> 2) & 7) << 5), b.point(lambda v: v >> 3))
    high = ImageChops.add(r.point(lambda v: (v >> 3) << 3), g.point(lambda v: v >> 5))
    return Image.merge("LA", (low, high)).tobytes()


class FramebufferOutput:
    """Writes frames into a Linux framebuffer device, scaled to its size."""

    def __init__(self, device: str = "/dev/fb0", *, sysfs: Path | None = None) -> None:
        self.device = device
        self.sysfs = sysfs or Path("/sys/class/graphics") / Path(device).name

    def geometry(self) -> tuple[int, int, int, int]:
        """(width, height, bits per pixel, stride) as the kernel reports them."""
        w, h = (int(v) for v in (self.sysfs / "virtual_size").read_text().split(","))
        bpp = int((self.sysfs / "bits_per_pixel").read_text())
        stride_file = self.sysfs / "stride"
        stride = int(stride_file.read_text()) if stride_file.exists() else w * bpp // 8
        return w, h, bpp, stride

    async def write(self, frame: Image.Image) -> None:
        await asyncio.to_thread(self._write, frame)

    def _write(self, frame: Image.Image) -> None:
        w, h, bpp, stride = self.geometry()
        data = framebuffer_bytes(frame, w, h, bpp, stride)
        with open(self.device, "r+b", buffering=0) as fb:
            fb.write(data)


# --- the component ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Calls:
    items: list[HallCall] = field(default_factory=list)
    keep: int = 20

    def add(self, number: str, window: int, at: float) -> None:
        self.items = [c for c in self.items if (c.number, c.window) != (number, window)]
        self.items.insert(0, HallCall(number, window, at))
        del self.items[self.keep:]


class HallDisplay:
    """Renders the hall display whenever the branch changes (coalesced). A component.

    Args:
        settings: the validated ``hall_display`` section.
        output: where frames go (:class:`PngOutput`, :class:`FramebufferOutput`).
        announcer: when given (and ``follow_voice``), calls appear as they are spoken.
        font: the font to use; default :func:`find_cjk_font` of the config's ``font``.
    """

    name = "hall_display"

    def __init__(self, settings: HallDisplayConfig, *, output: FrameOutput,
                 announcer: Announcements | None = None, font: FontChoice | None = None) -> None:
        self.settings, self.output = settings, output
        self.announcer = announcer if settings.follow_voice else None
        self.font = font
        self.calls = _Calls()
        self.frames = 0
        self.last_frame: Image.Image | None = None
        self.last_view: HallView | None = None
        self.listeners: list[Callable[[Image.Image], None]] = []  # after each frame written
        self._dirty = asyncio.Event()

    async def run(self, box: Host) -> None:
        """Render on every change until cancelled."""
        if self.font is None:
            self.font = await asyncio.to_thread(find_cjk_font, self.settings.font)
        if self.font.path is None:
            box.health.report(self.name, "warning", "no CJK font: Chinese cannot be shown")
        else:
            box.health.report(self.name, "ok")
        self._seed(box.engine.state)
        box.listeners.append(self._on_events)
        if self.announcer is not None:
            self.announcer.listeners.append(self._on_announcement)
        try:
            self._dirty.set()
            while True:
                # redraw on a change, and when the minute on the clock line turns
                await wait_at_most(self._dirty, 60 - box.clock.now() % 60)
                self._dirty.clear()
                await self._frame(box)
                await asyncio.sleep(self.settings.min_interval_s)
        finally:
            with contextlib.suppress(ValueError):
                box.listeners.remove(self._on_events)
            if self.announcer is not None:
                with contextlib.suppress(ValueError):
                    self.announcer.listeners.remove(self._on_announcement)

    def _seed(self, state: State) -> None:
        """Started mid-day: the numbers being served now are the latest calls."""
        serving = [state.tickets[w.current] for w in state.windows.values() if w.current]
        for t in sorted(serving, key=lambda t: t.called_at or 0.0):
            if t.window is not None:
                self.calls.add(t.number, t.window, t.called_at or 0.0)

    def _on_events(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            if self.announcer is None and e["type"] in ("ticket_called", "ticket_recalled"):
                self.calls.add(e["number"], e["window"], e["at"])
        self._dirty.set()

    def _on_announcement(self, phase: str, ann: Announcement) -> None:
        if phase == "start":
            self.calls.add(ann.number, ann.window, ann.started_at or 0.0)
            self._dirty.set()

    async def _frame(self, box: Host) -> None:
        assert self.font is not None
        s = self.settings
        view = hall_view(box.engine.state, box.config, s, list(self.calls.items),
                         box.clock.now())
        frame = await asyncio.to_thread(render, view, s.width, s.height, self.font, s.theme)
        try:
            await self.output.write(frame)
        except OSError as exc:
            box.health.report(self.name, "fault", str(exc))
            raise
        self.frames += 1
        self.last_frame, self.last_view = frame, view
        for listener in self.listeners:
            listener(frame)
