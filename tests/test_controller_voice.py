"""The announcer (controller/voice.py): clip packs, queueing, recall, volume, faults, the
``say`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import wave
from pathlib import Path

import pytest

from controller.box import Box
from controller.engine import commands as c
from controller.errors import AudioError
from controller.voice import Announcer, ClipPack, main
from drivers.audio import AlsaSink, SimSink
from tests.voice_support import (
    announcing,
    clips_in,
    pack_dir_fixture,  # noqa: F401  (the fixture pack_dir)
    settings,
    until,
    write_wav,
)


async def test_call_and_recall_are_announced_with_the_right_clips(box: Box, pack_dir: Path,
                                                                  tmp_path: Path) -> None:
    sink = SimSink(tmp_path / "sim" / "audio", pace=0)
    cfg = settings(languages=["zh", "yue", "en"])
    announcer = Announcer(cfg, sink=sink, clips_dir=pack_dir)
    async with announcing(box, announcer) as heard:
        await box.execute(c.Login(3, "t1", "1234"))
        await box.execute(c.IssueTicket(queue="A"))
        await box.execute(c.CallNext(3))
        await box.execute(c.Recall(3))
        await until(lambda: len([h for h in heard if h[0] == "end"]) == 2)
    first, second = sink.played
    assert (first.kind, first.number, first.window) == ("call", "A001", 3)
    assert (second.kind, second.number, second.window) == ("recall", "A001", 3)
    files = sorted(p.name for p in (tmp_path / "sim" / "audio").iterdir())
    assert files == ["1-A001-w3.wav", "2-A001-w3.wav"]
    expected = ["chime", "|",
                "zh/please", "zh/letter_a", "zh/d0", "zh/d0", "zh/d1", "zh/number", "zh/go_to",
                "zh/d3", "zh/window", "|",
                "yue/please", "yue/letter_a", "yue/d0", "yue/d0", "yue/d1", "yue/number",
                "yue/go_to", "yue/d3", "yue/window", "|",
                "en/number", "en/letter_a", "en/d0", "en/d0", "en/d1", "en/please_go_to",
                "en/window", "en/d3"]
    assert first.clips == expected
    for name in files:  # the recall says it all again, word for word
        assert clips_in(tmp_path / "sim" / "audio" / name) == expected


async def test_volume_and_no_chime(box: Box, pack_dir: Path, tmp_path: Path) -> None:
    sink = SimSink(tmp_path / "out", pace=0)
    announcer = Announcer(settings(volume=50, chime=False, languages=["en"]), sink=sink,
                          clips_dir=pack_dir)
    async with announcing(box, announcer) as heard:
        announcer.announce("T0012", 12)
        await until(lambda: len(heard) == 2)
    assert clips_in(tmp_path / "out" / "1-T0012-w12.wav", volume=50) == [
        "en/number", "en/letter_t", "en/d0", "en/d0", "en/d1", "en/d2", "en/please_go_to",
        "en/window", "en/n12"]


async def test_announcements_queue_in_order_and_never_overlap(box: Box, pack_dir: Path,
                                                              tmp_path: Path) -> None:
    sink = SimSink(tmp_path / "out", pace=0.3)  # each takes real playing time
    announcer = Announcer(settings(), sink=sink, clips_dir=pack_dir)
    async with announcing(box, announcer) as heard:
        for number, window in (("A001", 1), ("A002", 2), ("B001", 3)):
            announcer.announce(number, window)  # three calls in one instant
        await until(lambda: len(heard) == 6)
        assert announcer.current is None
    assert [(phase, number) for phase, number, _ in heard] == [
        ("start", "A001"), ("end", "A001"), ("start", "A002"), ("end", "A002"),
        ("start", "B001"), ("end", "B001")]
    times = [t for _, _, t in heard]
    assert times == sorted(times)
    played = sink.played
    assert all(a.duration_s > 0 and a.started_at is not None for a in played)
    # each lasted its playing time: the next began only after the previous one ended
    for (_, _, start), (_, _, end), ann in zip(heard[::2], heard[1::2], played, strict=True):
        assert end - start >= ann.duration_s * 0.3 * 0.9


async def test_player_failure_is_reported_and_next_still_plays(box: Box, pack_dir: Path) -> None:
    announcer = Announcer(settings(), sink=AlsaSink(player="false"), clips_dir=pack_dir)
    async with announcing(box, announcer) as heard:
        announcer.announce("A001", 1)
        announcer.announce("A002", 2)
        await until(lambda: len(heard) == 4)
    assert announcer.failures == 2
    assert box.health.devices["audio"].state == "fault"
    assert "false failed" in box.health.devices["audio"].detail


def test_pack_missing_clips_named(pack_dir: Path) -> None:
    (pack_dir / "zh" / "window.wav").unlink()
    with pytest.raises(AudioError, match="zh/window"):
        ClipPack.load(pack_dir, ["zh"])
    ClipPack.load(pack_dir, ["en"])  # English alone is complete


def test_pack_of_mixed_formats_refused(pack_dir: Path) -> None:
    write_wav(pack_dir / "en" / "d5.wav", b"\x10\x00" * 40, rate=16000)
    with pytest.raises(AudioError, match=r"d5\.wav"):
        ClipPack.load(pack_dir, ["en"])


def test_not_a_wav_refused(pack_dir: Path) -> None:
    (pack_dir / "en" / "d5.wav").write_bytes(b"not a wav")
    with pytest.raises(AudioError, match="not a WAV"):
        ClipPack.load(pack_dir, ["en"])


async def test_missing_pack_faults_the_component(box: Box, tmp_path: Path) -> None:
    announcer = Announcer(settings(), sink=SimSink(tmp_path, pace=0), clips_dir=tmp_path / "x")
    with pytest.raises(AudioError, match="make-clips"):
        await announcer.run(box)


async def test_a_missing_pack_is_made_by_the_clip_maker_it_is_given(
        box: Box, pack_dir: Path, tmp_path: Path) -> None:
    """The core does not know espeak-ng: the composition root hands it a ClipMaker."""
    asked: list[tuple[Path, list[str]]] = []

    async def maker(out: Path, languages: list[str]) -> int:
        asked.append((out, languages))
        shutil.copytree(pack_dir, out)
        return len(list(out.rglob("*.wav")))

    made = tmp_path / "made"
    announcer = Announcer(settings(), sink=SimSink(tmp_path / "out", pace=0), clips_dir=made,
                          make_missing=maker)
    task = asyncio.create_task(announcer.run(box))
    try:
        await asyncio.wait_for(announcer.ready.wait(), 10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert asked == [(made, ["zh", "en"])] and announcer.pack is not None


async def test_a_call_made_while_the_pack_is_being_made_is_announced_once_it_is_ready(
        box: Box, pack_dir: Path, tmp_path: Path) -> None:
    """A first start makes the clip pack (seconds on a slow core) while the tellers may
    already call: those calls wait in the queue instead of going unannounced."""
    release = asyncio.Event()

    async def slow_maker(out: Path, languages: list[str]) -> int:
        await release.wait()  # the pack takes as long as the test says
        shutil.copytree(pack_dir, out)
        return len(list(out.rglob("*.wav")))

    sink = SimSink(tmp_path / "out", pace=0)
    announcer = Announcer(settings(), sink=sink, clips_dir=tmp_path / "made",
                          make_missing=slow_maker)
    task = asyncio.create_task(announcer.run(box))
    try:
        await until(lambda: announcer.on_events in box.listeners)
        await box.execute(c.Login(3, "t1", "1234"))
        await box.execute(c.IssueTicket(queue="A"))
        await box.execute(c.CallNext(3))  # before the pack exists
        release.set()
        await until(lambda: len(sink.played) == 1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert (sink.played[0].number, sink.played[0].window) == ("A001", 3)
    assert announcer.on_events not in box.listeners


def test_say_stitches_one_announcement_into_a_file(pack_dir: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a023.wav"
    assert main(["say", "A023", "3", "--clips", str(pack_dir), "--languages", "zh,en",
                 "--out", str(out)]) == 0
    assert "zh/please zh/letter_a" in capsys.readouterr().out
    with wave.open(str(out)) as w:
        assert w.getnframes() > 0
    assert main(["say", "A023", "3", "--clips", str(tmp_path / "none")]) == 1
