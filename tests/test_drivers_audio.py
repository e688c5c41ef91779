"""The speakers (drivers/audio.py: ALSA, the simulator's WAV files) and the espeak-ng clip
maker."""

from __future__ import annotations

import asyncio
import shutil
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.box import Box
from controller.errors import AudioError
from controller.ports import Announcement
from controller.voice import Announcer, ClipPack
from drivers.audio import AlsaSink, SimSink, make_clips
from protocols.voice import VOCABULARY, announcement_clips
from tests.voice_support import announcing, settings, until


async def test_missing_player_is_a_clear_error() -> None:
    with pytest.raises(AudioError, match="not found"):
        await AlsaSink(player="no-such-player-xyz").play(b"", Announcement(1, "call", "A1", 1))


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


def test_a_pack_cancelled_half_way_leaves_no_espeak_running(tmp_path: Path) -> None:
    """A SIGTERM while the box makes its pack cancels make_clips: every espeak-ng it
    started is killed and reaped at once, none is left speaking into a pipe nobody reads."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    started = tmp_path / "started"
    slow = tmp_path / "slow-espeak"
    slow.write_text(f"#!/bin/sh\necho $$ >> {started}\nexec sleep 60\n")
    slow.chmod(0o755)

    async def cancel_when_speaking() -> None:
        task = asyncio.create_task(make_clips(tmp_path / "clips", ["en"], espeak=str(slow),
                                              jobs=3))
        while not started.exists() or len(started.read_text().split()) < 3:
            await asyncio.sleep(0.02)  # polling another process's file
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(cancel_when_speaking(), 20))
    pids = [int(p) for p in started.read_text().split()]
    assert len(pids) == 3
    assert not [p for p in pids if Path(f"/proc/{p}").exists()]  # killed and reaped
    assert not (tmp_path / ".clips.making").exists()
