"""A recorded clip pack whose clips can be told apart in the output, and running an
announcer: shared by the voice tests (tests/test_controller_voice.py) and the drivers'
(tests/test_drivers_audio.py)."""

from __future__ import annotations

import array
import asyncio
import contextlib
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from controller.box import Box
from controller.voice import Announcer, AudioConfig
from protocols.voice import VOCABULARY
from tests.uplink_support import running

RATE = 8000
CLIP_FRAMES = 20
GAP_MS, PAUSE_MS = 5, 20


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


@pytest.fixture(name="pack_dir")
def pack_dir_fixture(tmp_path: Path) -> Path:
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
    async with running(announcer.run(box)):
        await asyncio.wait_for(announcer.ready.wait(), 30)
        yield heard


async def until(predicate: Any, timeout: float = 10) -> None:
    """Wait for a condition the announcer's listeners make true (no fixed sleeps)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)  # polling: the condition is the signal
