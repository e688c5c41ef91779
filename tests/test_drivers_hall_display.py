"""Hall display: frames drawn with the newest call highlighted, columns when busy, outputs."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from PIL import Image

from controller.box import Box
from controller.engine import commands as c
from controller.ports import Announcement
from controller.voice import Announcer, AudioConfig
from drivers.audio import SimSink
from drivers.hall_display import (
    FontChoice,
    FramebufferOutput,
    HallCall,
    HallDisplay,
    HallDisplayConfig,
    HallView,
    Layout,
    PngOutput,
    Theme,
    WindowView,
    find_cjk_font,
    framebuffer_bytes,
    render,
)

THEME = Theme()
W, H = 960, 540


@pytest.fixture(scope="module")
def font() -> FontChoice:
    choice = find_cjk_font()
    if choice.path is None:
        pytest.skip("no CJK font installed (apt-get install fonts-noto-cjk)")
    return choice


def share(img: Image.Image, box: tuple[int, int, int, int], colour: tuple[int, int, int]
          ) -> float:
    """The share of the box's pixels that are exactly ``colour``."""
    crop = img.crop(box).convert("RGB")
    count = sum(n for n, rgb in crop.getcolors(crop.width * crop.height) or [] if rgb == colour)
    return count / (crop.width * crop.height)


def view(calls: list[HallCall], busy: bool = False, windows: list[WindowView] | None = None
         ) -> HallView:
    return HallView("郑州金水路支行", "2026-11-25 10:00", calls, windows or [],
                    [("个人业务", 3), ("对公业务", 0)], busy)


def test_cjk_font_found_and_draws_chinese(font: FontChoice) -> None:
    assert font.path is not None
    f = font.at(40)
    assert bytes(f.getmask("号")) != bytes(f.getmask("\U0010fffd"))  # a glyph, not a box


def test_bad_font_setting_falls_back(font: FontChoice, caplog: pytest.LogCaptureFixture) -> None:
    assert find_cjk_font("/nonexistent/font.ttf").path == font.path
    assert "cannot draw Chinese" in caplog.text


def test_quiet_layout_highlights_newest_call(font: FontChoice) -> None:
    lay = Layout(W, H)
    img = render(view([HallCall("A023", 3, 0), HallCall("A022", 1, 0)]), W, H, font)
    assert img.size == (W, H)
    assert share(img, lay.header, THEME.header_bg) > 0.5
    assert share(img, lay.highlight, THEME.highlight_bg) > 0.6
    assert share(img, lay.highlight, THEME.highlight_text) > 0.03  # the words are drawn
    older = lay.rows(2)[0]
    assert share(img, older, THEME.text) > 0.02  # A022 listed below
    assert share(img, lay.rows(2)[1], THEME.text) == 0  # nothing else
    assert share(img, lay.footer, THEME.waiting_text) > 0.01


def test_newest_call_moves_into_the_highlight(font: FontChoice) -> None:
    lay = Layout(W, H)
    before = render(view([HallCall("A022", 1, 0)]), W, H, font)
    after = render(view([HallCall("A023", 3, 0), HallCall("A022", 1, 0)]), W, H, font)
    assert before.crop(lay.highlight).tobytes() != after.crop(lay.highlight).tobytes()
    # the call that was newest is now listed below
    assert share(before, lay.rows(2)[0], THEME.text) == 0
    assert share(after, lay.rows(2)[0], THEME.text) > 0.02


def test_no_calls_yet_shows_welcome(font: FontChoice) -> None:
    img = render(view([]), W, H, font)
    assert share(img, Layout(W, H).highlight, THEME.highlight_bg) == 0
    assert share(img, Layout(W, H).highlight, THEME.dim_text) > 0.01


def test_busy_layout_column_per_window(font: FontChoice) -> None:
    windows = [WindowView(1, "1号窗口", "A022", "serving"),
               WindowView(2, "2号窗口", None, "paused"),
               WindowView(3, "3号窗口", "A023", "serving"),
               WindowView(4, "4号窗口", None, "idle")]
    img = render(view([HallCall("A023", 3, 0), HallCall("A022", 1, 0)], True, windows), W, H, font)
    cells = Layout(W, H).columns(4)
    assert [share(img, cell, THEME.highlight_bg) > 0.5 for cell in cells] == [
        False, False, True, False]
    assert share(img, cells[0], THEME.text) > 0.01  # A022
    assert share(img, cells[1], THEME.text) > 0.005  # 暂停服务
    assert share(img, cells[3], THEME.text) == 0  # idle: nothing but its label


@contextlib.asynccontextmanager
async def displaying(box: Box, display: HallDisplay) -> AsyncIterator[asyncio.Queue[Image.Image]]:
    frames: asyncio.Queue[Image.Image] = asyncio.Queue()
    display.listeners.append(frames.put_nowait)
    task = asyncio.create_task(display.run(box))
    try:
        yield frames
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def frame_where(frames: asyncio.Queue[Image.Image], display: HallDisplay,
                      shows: Callable[[HallView], bool]) -> Image.Image:
    """The first frame written whose view ``shows`` what the test waits for."""
    async with asyncio.timeout(10):
        while True:
            frame = await frames.get()
            if display.last_view is not None and shows(display.last_view):
                return frame


def newest(number: str) -> Callable[[HallView], bool]:
    return lambda v: bool(v.calls) and v.calls[0].number == number


def serving(window: int, state: str) -> Callable[[HallView], bool]:
    return lambda v: any(w.number == window and w.state == state for w in v.windows)


SMALL = HallDisplayConfig(width=W, height=H, min_interval_s=0, busy_waiting=10)


async def test_box_call_rendered_to_png(box: Box, tmp_path: Path, font: FontChoice) -> None:
    png = tmp_path / "data" / "sim" / "hall" / "latest.png"
    display = HallDisplay(SMALL, output=PngOutput(png), font=font)
    async with displaying(box, display) as frames:
        await box.execute(c.Login(3, "t1", "1234"))
        await box.execute(c.IssueTicket(queue="A"))
        await box.execute(c.CallNext(3))
        await frame_where(frames, display, newest("A001"))
    img = Image.open(png)
    assert img.size == (W, H)
    assert share(img, Layout(W, H).highlight, THEME.highlight_bg) > 0.6
    assert share(img, Layout(W, H).highlight, THEME.highlight_text) > 0.03
    assert not list(png.parent.glob("*.tmp.png"))
    assert box.health.devices["hall_display"].state == "ok"


async def test_call_shown_when_its_announcement_starts(box: Box, tmp_path: Path,
                                                       font: FontChoice) -> None:
    announcer = Announcer(AudioConfig(), sink=SimSink(tmp_path, pace=0), clips_dir=tmp_path)
    display = HallDisplay(SMALL, output=PngOutput(tmp_path / "hall.png"), font=font,
                          announcer=announcer)
    lay = Layout(W, H)
    async with displaying(box, display) as frames:
        await box.execute(c.Login(3, "t1", "1234"))
        await box.execute(c.IssueTicket(queue="A"))
        await box.execute(c.CallNext(3))
        # called, but the voice has not said it yet: window 3 serves, the screen waits
        silent = await frame_where(frames, display, serving(3, "serving"))
        assert display.last_view is not None and display.last_view.calls == []
        assert display.last_view.windows[2].current is None
        assert share(silent, lay.highlight, THEME.highlight_bg) == 0
        for listener in announcer.listeners:  # the announcer starts saying it
            listener("start", Announcement(1, "call", "A001", 3, started_at=1.0))
        spoken = await frame_where(frames, display, newest("A001"))
        assert display.last_view.windows[2].current == "A001"
    assert display.calls.items == [HallCall("A001", 3, 1.0)]
    assert share(spoken, lay.highlight, THEME.highlight_bg) > 0.6


async def test_no_cjk_font_is_a_health_warning(box: Box, tmp_path: Path) -> None:
    display = HallDisplay(SMALL, output=PngOutput(tmp_path / "x.png"), font=FontChoice(None))
    async with displaying(box, display) as frames:
        frame = await frame_where(frames, display, lambda v: True)
    assert frame.size == (W, H)
    assert box.health.devices["hall_display"].state == "warning"


def test_framebuffer_pixels() -> None:
    red = Image.new("RGB", (4, 2), (255, 0, 0))
    assert framebuffer_bytes(red, 4, 2, 16) == b"\x00\xf8" * 8  # RGB565, little-endian
    assert framebuffer_bytes(red, 4, 2, 32) == b"\x00\x00\xff\xff" * 8  # B G R X
    padded = framebuffer_bytes(red, 4, 2, 16, stride=10)
    assert padded == (b"\x00\xf8" * 4 + b"\x00\x00") * 2
    assert framebuffer_bytes(red, 2, 1, 16) == b"\x00\xf8" * 2  # scaled to the panel
    with pytest.raises(ValueError, match="bits per pixel"):
        framebuffer_bytes(red, 4, 2, 8)


async def test_framebuffer_output_writes_device(tmp_path: Path) -> None:
    sysfs = tmp_path / "fb0"
    sysfs.mkdir()
    (sysfs / "virtual_size").write_text("8,4\n")
    (sysfs / "bits_per_pixel").write_text("32\n")
    (sysfs / "stride").write_text("32\n")
    device = tmp_path / "dev-fb0"
    device.write_bytes(bytes(8 * 4 * 4))
    out = FramebufferOutput(str(device), sysfs=sysfs)
    await out.write(Image.new("RGB", (16, 8), (0, 0, 255)))
    assert device.read_bytes() == b"\xff\x00\x00\xff" * 32
    assert os.path.getsize(device) == 128


async def test_a_stop_that_comes_with_a_change_still_stops_the_display(
        box: Box, tmp_path: Path) -> None:
    """The box stops on SIGTERM by cancelling its components: a change heard in the same
    loop turn must not swallow the cancel (asyncio.wait_for on 3.11 did, and the display
    then redrew for ever: the box never exited)."""
    display = HallDisplay(SMALL, output=PngOutput(tmp_path / "x.png"), font=FontChoice(None))
    frames: asyncio.Queue[Image.Image] = asyncio.Queue()
    display.listeners.append(frames.put_nowait)
    task = asyncio.create_task(display.run(box))
    await frames.get()  # the first frame is drawn
    for _ in range(5):
        await asyncio.sleep(0)  # one loop turn each: the display goes back to waiting
    for listener in box.listeners:  # a change arrives (a commit's events) ...
        listener([])
    task.cancel()  # ... in the same turn as the stop
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await task
