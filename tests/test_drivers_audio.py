"""Voice announcements: phrases per language, clip packs, queueing, recall, the WAV written."""

from __future__ import annotations

import array
import asyncio
import contextlib
import shutil
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.box import Box
from controller.engine import commands as c
from drivers.audio import (
    VOCABULARY,
    AlsaSink,
    Announcement,
    Announcer,
    AudioConfig,
    AudioError,
    ClipPack,
    SimSink,
    announcement_clips,
    make_clips,
    phrase,
)

RATE = 8000
CLIP_FRAMES = 20
GAP_MS, PAUSE_MS = 5, 20


# --- phrases ------------------------------------------------------------------------------


def test_mandarin_phrase() -> None:  # 请 A023 号 到 3 号窗口
    assert phrase("zh", "A023", 3) == ["please", "letter_a", "d0", "d2", "d3", "number", "go_to",
                                       "d3", "window"]


def test_english_phrase() -> None:  # Number A023, please go to window 3
    assert phrase("en", "A023", 3) == ["number", "letter_a", "d0", "d2", "d3", "please_go_to",
                                       "window", "d3"]


@pytest.mark.parametrize(("window", "zh", "en"), [
    (10, ["ten"], ["n10"]),
    (12, ["ten", "d2"], ["n12"]),
    (20, ["d2", "ten"], ["n20"]),
    (23, ["d2", "ten", "d3"], ["n20", "d3"]),
    (100, ["d1", "hundred"], ["d1", "hundred"]),
    (105, ["d1", "hundred", "d0", "d5"], ["d1", "hundred", "d5"]),
    (110, ["d1", "hundred", "d1", "ten"], ["d1", "hundred", "n10"]),
])
def test_window_numbers_are_said_as_numbers(window: int, zh: list[str], en: list[str]) -> None:
    assert phrase("yue", "T0001", window)[-len(zh) - 1:-1] == zh
    assert phrase("en", "T0001", window)[-len(en):] == en


def test_every_phrase_clip_is_in_the_vocabulary() -> None:
    for lang in VOCABULARY:
        for window in range(1, 1000):
            assert set(phrase(lang, "ABC123", window)) <= set(VOCABULARY[lang])


# --- a recorded pack whose clips can be told apart in the output --------------------------


def levels() -> dict[str, int]:
    """Each clip of the test pack is a flat tone at its own level."""
    names = ["chime"] + [f"{lang}/{clip}" for lang in VOCABULARY for clip in VOCABULARY[lang]]
    return {name: 200 + 100 * i for i, name in enumerate(names)}


def write_wav(path: Path, frames: bytes, rate: int = RATE, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "clips"
    for name, level in levels().items():
        write_wav(folder / f"{name}.wav", array.array("h", [level] * CLIP_FRAMES).tobytes())
    return folder


def clips_in(wav_path: Path, volume: int = 100) -> list[str]:
    """Read the clip sequence back out of a stitched WAV of the test pack."""
    by_level = {level * volume // 100: name for name, level in levels().items()}
    with wave.open(str(wav_path)) as w:
        assert (w.getframerate(), w.getnchannels()) == (RATE, 1)
        samples = array.array("h", w.readframes(w.getnframes()))
    out: list[str] = []
    i, gap = 0, RATE * GAP_MS // 1000
    while i < len(samples):
        j = i
        while j < len(samples) and samples[j] == samples[i]:
            j += 1
        if samples[i] == 0:
            if j - i > gap and j < len(samples):
                out.append("|")
        else:
            assert j - i == CLIP_FRAMES, f"clip cut short or overlapping at frame {i}"
            out.append(by_level[samples[i]])
        i = j
    return out


def settings(**kw: Any) -> AudioConfig:
    return AudioConfig.model_validate({"gap_ms": GAP_MS, "pause_ms": PAUSE_MS, **kw})


@contextlib.asynccontextmanager
async def announcing(box: Box, announcer: Announcer) -> AsyncIterator[list[tuple[str, str, float]]]:
    """Run the announcer; yield the (phase, number, loop time) it tells its listeners."""
    heard: list[tuple[str, str, float]] = []
    loop = asyncio.get_running_loop()
    announcer.listeners.append(lambda phase, a: heard.append((phase, a.number, loop.time())))
    task = asyncio.create_task(announcer.run(box))
    await asyncio.wait_for(announcer.ready.wait(), 30)
    try:
        yield heard
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(predicate: Any, timeout: float = 10) -> None:
    """Wait for a condition the announcer's listeners make true (no fixed sleeps)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


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


async def test_missing_player_is_a_clear_error() -> None:
    with pytest.raises(AudioError, match="not found"):
        await AlsaSink(player="no-such-player-xyz").play(b"", Announcement(1, "call", "A1", 1))


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


# --- the espeak-ng pack ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def espeak_pack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    out = tmp_path_factory.mktemp("espeak") / "clips"
    asyncio.run(make_clips(out, ["zh", "yue", "en"]))
    yield out


def test_make_clips_writes_a_complete_pack(espeak_pack: Path) -> None:
    pack = ClipPack.load(espeak_pack, ["zh", "yue", "en"])
    assert pack.format.rate == 22050 and pack.format.channels == 1
    assert len(pack.clips) == sum(len(v) for v in VOCABULARY.values()) + 1  # + chime
    for name, pcm in pack.clips.items():  # each clip says something, trimmed of silence
        seconds = len(pcm) / 2 / 22050
        assert 0.05 < seconds < 2.5, name


async def test_espeak_announcement_wav(box: Box, espeak_pack: Path, tmp_path: Path) -> None:
    out = tmp_path / "data" / "sim" / "audio"
    sink = SimSink(out, pace=0)
    announcer = Announcer(settings(languages=["zh", "yue", "en"], gap_ms=40, pause_ms=350),
                          sink=sink, clips_dir=espeak_pack)
    async with announcing(box, announcer) as heard:
        announcer.announce("A023", 3)
        await until(lambda: len(heard) == 2)
    wav = out / "1-A023-w3.wav"
    with wave.open(str(wav)) as w:
        seconds = w.getnframes() / w.getframerate()
    clips = sink.played[0].clips
    assert clips == announcement_clips(["zh", "yue", "en"], "A023", 3, chime=True)
    words = [n for n in clips if n != "|"]
    pack = ClipPack.load(espeak_pack, ["zh", "yue", "en"])
    speech = sum(len(pack.clips[n]) for n in words) / 2 / 22050
    # the clips back to back, a 40 ms gap after each, 350 ms between the languages
    assert seconds == pytest.approx(speech + len(words) * 0.04 + clips.count("|") * 0.35,
                                    abs=0.005)
    assert 8 < seconds < 25


def test_a_pack_interrupted_half_way_leaves_nothing_half_made(tmp_path: Path) -> None:
    """espeak-ng failing on the 20th clip (as a power cut would stop it): the clips folder
    is left as it was, so the next start makes the whole pack again."""
    real = shutil.which("espeak-ng")
    if real is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    calls = tmp_path / "calls"
    flaky = tmp_path / "flaky-espeak"
    flaky.write_text(f'#!/bin/sh\necho x >> {calls}\n'
                     f'[ "$(wc -l < {calls})" -ge 20 ] && {{ echo broke >&2; exit 1; }}\n'
                     f'exec {real} "$@"\n')
    flaky.chmod(0o755)
    out = tmp_path / "clips"
    with pytest.raises(AudioError, match="espeak-ng failed"):
        asyncio.run(make_clips(out, ["zh", "en"], espeak=str(flaky), jobs=1))
    assert not list(tmp_path.glob("**/*.wav"))  # neither in clips nor left in staging

    assert asyncio.run(make_clips(out, ["zh", "en"])) > 20
    ClipPack.load(out, ["zh", "en"])  # complete
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
