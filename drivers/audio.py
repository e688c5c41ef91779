"""Voice announcements' devices (SPEC B7): the speakers, and the tool that makes a clip pack.

What to say and when is the box's (controller/voice.py, the words in protocols/voice.py);
this module has what the sound goes through and the pack maker:

- :class:`AlsaSink` pipes each announcement's WAV to ``aplay`` (ALSA) on the box;
- :class:`SimSink`, the simulator's speaker, writes ``<n>-<number>-w<window>.wav`` and
  keeps the sequence;
- :func:`make_clips` speaks a clip pack with ``espeak-ng`` at install time
  (``python -m drivers.audio make-clips --out DIR``); a pack recorded by a speaker can be
  dropped in place instead, with the same file names (16-bit PCM WAV, one sample rate and
  channel count for the whole pack).

Both sinks implement :class:`controller.ports.AudioSink`; the composition root
(controller/compose.py) chooses one and hands it to the announcer.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import math
import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

from controller.errors import AudioError
from controller.ports import Announcement
from protocols.voice import VOCABULARY, PcmFormat, parse_languages, wav_bytes

__all__ = ["VOICES", "AlsaSink", "AudioError", "SimSink", "espeak_input", "main", "make_clips"]

VOICES: dict[str, str] = {"zh": "cmn", "yue": "yue", "en": "en"}  # espeak-ng voices

# espeak-ng 1.51's ``cmn`` voice misreads many characters (it spells their pinyin in
# English), so Mandarin clips are spoken from pinyin by ``cmn-latn-pinyin``; letters keep
# the ``cmn`` voice, which reads Latin letters the English way, as callers do.
_PINYIN = {"please": "qing3", "number": "hao4", "go_to": "dao4", "window": "hao4 chuang1 kou3",
           "ten": "shi2", "hundred": "bai3",
           **{f"d{i}": p for i, p in enumerate(
               ["ling2", "yi1", "er4", "san1", "si4", "wu3", "liu4", "qi1", "ba1", "jiu3"])}}


def espeak_input(language: str, clip: str) -> tuple[str, str]:
    """The espeak-ng voice and text that speak ``clip`` of ``language``."""
    if language == "zh" and clip in _PINYIN:
        return "cmn-latn-pinyin", _PINYIN[clip]
    return VOICES[language], VOCABULARY[language][clip]


# --- sinks ------------------------------------------------------------------------------------


class AlsaSink:
    """Plays through ALSA with ``aplay`` reading the WAV from its standard input."""

    def __init__(self, *, device: str = "", player: str = "aplay") -> None:
        self.device, self.player = device, player

    async def play(self, wav: bytes, announcement: Announcement) -> None:
        exe = shutil.which(self.player)
        if exe is None:
            raise AudioError(f"{self.player} not found (apt-get install alsa-utils)")
        args = [exe, "-q", *(["-D", self.device] if self.device else []), "-"]
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            _, err = await proc.communicate(wav)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            raise AudioError(f"{self.player} failed ({proc.returncode}): "
                             f"{err.decode(errors='replace').strip()[:200]}")


class SimSink:
    """The simulator's speaker: writes each announcement's WAV and keeps the sequence.

    Playing takes ``duration × pace`` seconds (0: instant), so the queue behaves as on a
    real speaker.
    """

    def __init__(self, out_dir: Path, *, pace: float = 1.0) -> None:
        self.out_dir, self.pace = Path(out_dir), pace
        self.played: list[Announcement] = []

    async def play(self, wav: bytes, announcement: Announcement) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread((self.out_dir / announcement.filename).write_bytes, wav)
        self.played.append(announcement)
        if self.pace:
            await asyncio.sleep(announcement.duration_s * self.pace)


# --- making a clip pack with espeak-ng ----------------------------------------------------------


async def make_clips(out: Path, languages: Iterable[str] = ("zh", "yue", "en"), *,
                     espeak: str = "espeak-ng", speed: int = 150, jobs: int = 4) -> int:
    """Speak every clip of ``languages`` with espeak-ng into ``out``; add a chime.

    The pack is made in a staging folder beside ``out`` and moved in, one language folder
    at a time, only once every clip is spoken: a power cut or a failure half-way leaves
    ``out`` as it was (and the box makes the pack again at its next start), never a pack
    with clips missing. Returns the number of clips written. Raises :class:`AudioError`
    if espeak-ng is missing or fails.
    """
    exe = shutil.which(espeak)
    if exe is None:
        raise AudioError(f"{espeak} not found (apt-get install espeak-ng), or drop a "
                         f"recorded clip pack into {out}")
    staging = out.parent / f".{out.name}.making"
    shutil.rmtree(staging, ignore_errors=True)  # what an interrupted run left
    try:
        count = await _speak_clips(exe, staging, list(languages), speed, jobs)
        _move_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return count


def _move_in(staging: Path, out: Path) -> None:
    """Each language folder and the chime from ``staging`` into ``out``, replacing theirs."""
    out.mkdir(parents=True, exist_ok=True)
    for made in sorted(staging.iterdir()):
        target = out / made.name
        if made.is_dir() and target.exists():
            old = staging / f"{made.name}.old"
            os.replace(target, old)
        os.replace(made, target)


async def _speak_clips(exe: str, out: Path, langs: list[str], speed: int, jobs: int) -> int:
    limit = asyncio.Semaphore(jobs)
    rate: list[int] = []

    async def one(lang: str, clip: str) -> None:
        voice, text = espeak_input(lang, clip)
        async with limit:
            proc = await asyncio.create_subprocess_exec(
                exe, "-v", voice, "-s", str(speed), "--stdout", text,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            try:
                wav, err = await proc.communicate()
            finally:  # cancelled (a SIGTERM while making the pack): no espeak-ng outlives us
                if proc.returncode is None:
                    proc.kill()
                    await asyncio.shield(proc.wait())
        if proc.returncode != 0:
            raise AudioError(f"espeak-ng failed on {lang}/{clip}: {err.decode()[:200]}")
        fmt, pcm = _read_wav_stream(wav)
        rate.append(fmt.rate)
        path = out / lang / f"{clip}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(wav_bytes(fmt, _trim(pcm, fmt)))

    try:
        async with asyncio.TaskGroup() as tg:
            for lang in langs:
                for clip in VOCABULARY[lang]:
                    tg.create_task(one(lang, clip))
    except* AudioError as failed:
        raise failed.exceptions[0] from None  # the first clip that failed says why
    out.mkdir(parents=True, exist_ok=True)
    (out / "chime.wav").write_bytes(_chime(PcmFormat(rate[0] if rate else 22050, 1)))
    return sum(len(VOCABULARY[lang]) for lang in langs) + 1


def _read_wav_stream(data: bytes) -> tuple[PcmFormat, bytes]:
    """espeak-ng's --stdout WAV has unknown lengths in its header: take what follows it."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("espeak-ng did not write a WAV")
    channels = int.from_bytes(data[22:24], "little")
    rate = int.from_bytes(data[24:28], "little")
    start = data.find(b"data") + 8
    pcm = data[start:]
    return PcmFormat(rate, channels), pcm[: len(pcm) // 2 * 2]


def _trim(pcm: bytes, fmt: PcmFormat, threshold: int = 300, keep_ms: int = 15) -> bytes:
    """Cut the silence espeak-ng leaves around a word, so stitched clips flow."""
    samples = array.array("h", pcm)
    loud = [i for i, s in enumerate(samples) if abs(s) > threshold]
    if not loud:
        return pcm
    keep = fmt.frames(keep_ms) * fmt.channels
    return samples[max(loud[0] - keep, 0): loud[-1] + keep].tobytes()


def _chime(fmt: PcmFormat) -> bytes:
    """A two-tone ding-dong (E6 then C6), fading, 0.9 s."""
    pcm = array.array("h")
    for freq, length in ((1318.5, 0.42), (1046.5, 0.48)):
        frames = int(fmt.rate * length)
        for i in range(frames):
            envelope = math.exp(-4.0 * i / frames)
            pcm.append(int(9000 * envelope * math.sin(2 * math.pi * freq * i / fmt.rate)))
    return wav_bytes(fmt, pcm.tobytes())




# --- command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m drivers.audio make-clips --out DIR`` (try a pack: ``python -m
    controller.voice say NUMBER WINDOW --clips DIR``)."""
    p = argparse.ArgumentParser(prog="python -m drivers.audio",
                                description="make a clip pack with espeak-ng")
    sub = p.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-clips", help="speak a clip pack with espeak-ng")
    mk.add_argument("--out", required=True, type=Path)
    mk.add_argument("--languages", default="zh,yue,en")
    mk.add_argument("--speed", type=int, default=150, help="words per minute")
    args = p.parse_args(argv)
    try:
        langs = parse_languages(args.languages)
        n = asyncio.run(make_clips(args.out, langs, speed=args.speed))
        print(f"{n} clips written to {args.out}")
    except (ValueError, AudioError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
