"""Voice announcements (SPEC B7): "请 A023 号到 3 号窗口" stitched from recorded clips.

An announcement is a sequence of short clips per language — Mandarin (``zh``), Cantonese
(``yue``), English (``en``) — played one language after the other, optionally after a
chime. Clips come from a *clip pack*, a folder::

    <pack>/chime.wav            optional ding-dong before each announcement
    <pack>/zh/please.wav        请
    <pack>/zh/letter_a.wav      A       (… letter_z)
    <pack>/zh/d0.wav            零      (… d9)
    …

:data:`VOCABULARY` lists every clip of every language with the words it says. A pack is
made at install time from ``espeak-ng`` (``python -m drivers.audio make-clips --out DIR``)
or recorded by a speaker and dropped in place with the same file names (16-bit PCM WAV,
one sample rate and channel count for the whole pack).

The :class:`Announcer` hears ``ticket_called`` and ``ticket_recalled`` from the box and
plays announcements strictly one after another: a second call waits, it never cuts off
the first; a recall is announced again in full. ``listeners`` are told when each
announcement starts and ends, so displays can update in step with the voice.

Playback goes to a sink: :class:`AlsaSink` pipes the WAV to ``aplay`` (ALSA) on the box;
:class:`SimSink` writes ``<n>-<number>-w<window>.wav`` and keeps the clip sequence.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import io
import logging
import math
import os
import shutil
import sys
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from controller.notices import Voice, voice

if TYPE_CHECKING:
    from controller.box import Box

__all__ = [
    "VOCABULARY",
    "VOICES",
    "AlsaSink",
    "Announcement",
    "Announcer",
    "AudioConfig",
    "AudioError",
    "AudioSink",
    "ClipPack",
    "SimSink",
    "announcement_clips",
    "espeak_input",
    "make_clips",
    "phrase",
    "required_clips",
]

log = logging.getLogger(__name__)

Language = Literal["zh", "yue", "en"]
VOICES: dict[str, str] = {"zh": "cmn", "yue": "yue", "en": "en"}  # espeak-ng voices
_LETTERS = {f"letter_{ch.lower()}": ch for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
_ZH_DIGITS = "零一二三四五六七八九"
_EN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_EN_TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
             "seventeen", "eighteen", "nineteen")
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
            "ninety")

#: Every clip of every language and the words it says (what a speaker records).
VOCABULARY: dict[str, dict[str, str]] = {
    "zh": {"please": "请", "number": "号", "go_to": "到", "window": "号窗口",
           **{f"d{i}": ch for i, ch in enumerate(_ZH_DIGITS)}, "ten": "十", "hundred": "百",
           **_LETTERS},
    "yue": {"please": "請", "number": "號", "go_to": "到", "window": "號窗口",
            **{f"d{i}": ch for i, ch in enumerate(_ZH_DIGITS)}, "ten": "十", "hundred": "百",
            **_LETTERS},
    "en": {"number": "Number", "please_go_to": "please go to", "window": "window",
           **{f"d{i}": w for i, w in enumerate(_EN_DIGITS)},
           **{f"n{10 + i}": w for i, w in enumerate(_EN_TEENS)},
           **{f"n{10 * i}": _EN_TENS[i] for i in range(2, 10)}, "hundred": "hundred",
           **_LETTERS},
}


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


class AudioError(OSError):
    """A clip pack is missing or malformed, or the player failed."""


# --- phrases (pure) ------------------------------------------------------------------------


def _ticket(number: str) -> list[str]:
    """Ticket numbers are read character by character: A023 → A 零 二 三."""
    out = []
    for ch in number.upper():
        if ch.isdigit() and ch.isascii():
            out.append(f"d{ch}")
        elif f"letter_{ch.lower()}" in _LETTERS:
            out.append(f"letter_{ch.lower()}")
    return out


def _chinese_cardinal(n: int) -> list[str]:
    """3 → 三, 12 → 十二, 20 → 二十, 105 → 一百零五, 110 → 一百一十 (Mandarin and Cantonese)."""
    if n < 10:
        return [f"d{n}"]
    if n < 20:
        return ["ten"] + ([f"d{n % 10}"] if n % 10 else [])
    if n < 100:
        return [f"d{n // 10}", "ten"] + ([f"d{n % 10}"] if n % 10 else [])
    rest = n % 100
    head = [f"d{n // 100}", "hundred"]
    if rest == 0:
        return head
    if rest < 10:
        return [*head, "d0", f"d{rest}"]
    tens = [f"d{rest // 10}", "ten"] + ([f"d{rest % 10}"] if rest % 10 else [])
    return head + tens


def _english_cardinal(n: int) -> list[str]:
    """3 → three, 12 → twelve, 23 → twenty three, 105 → one hundred five."""
    if n < 10:
        return [f"d{n}"]
    if n < 20:
        return [f"n{n}"]
    if n < 100:
        return [f"n{n // 10 * 10}"] + ([f"d{n % 10}"] if n % 10 else [])
    return [f"d{n // 100}", "hundred"] + (_english_cardinal(n % 100) if n % 100 else [])


def phrase(language: str, number: str, window: int) -> list[str]:
    """The clip names that say "number ``number`` to window ``window``" in ``language``."""
    if language in ("zh", "yue"):  # 请 A023 号 到 3 号窗口
        return ["please", *_ticket(number), "number", "go_to", *_chinese_cardinal(window),
                "window"]
    if language == "en":  # Number A023, please go to window 3
        return ["number", *_ticket(number), "please_go_to", "window",
                *_english_cardinal(window)]
    raise ValueError(f"no phrase for language {language!r}; known: {sorted(VOCABULARY)}")


def announcement_clips(languages: Iterable[str], number: str, window: int, *, chime: bool
                       ) -> list[str]:
    """The whole announcement: optional chime, then each language; ``|`` = a pause."""
    seq = ["chime", "|"] if chime else []
    for i, lang in enumerate(languages):
        seq += (["|"] if i else []) + [f"{lang}/{c}" for c in phrase(lang, number, window)]
    return seq


def required_clips(language: str) -> list[str]:
    """Every clip a pack must hold for ``language``."""
    return list(VOCABULARY[language])


# --- configuration -------------------------------------------------------------------------


class AudioConfig(BaseModel):
    """The ``audio`` config section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    languages: list[Language] = ["zh", "en"]  # spoken in this order
    clips: str = ""  # clip pack folder; "" = <data-dir>/audio/clips
    volume: int = Field(100, ge=0, le=100)  # percent of the recorded level
    chime: bool = True
    gap_ms: int = Field(40, ge=0, le=2000)  # silence between clips
    pause_ms: int = Field(350, ge=0, le=5000)  # silence between languages
    device: str = ""  # ALSA device for aplay, e.g. "plughw:1,0"; "" = default
    player: str = "aplay"
    max_pending: int = Field(20, ge=1, le=1000)  # older pending announcements are dropped
    sim_pace: float = Field(1.0, ge=0)  # simulator: playing time × this (0 = instant)


# --- clip packs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Format:
    rate: int
    channels: int

    def frames(self, ms: int) -> int:
        return self.rate * ms // 1000


class ClipPack:
    """The clips of some languages, loaded and scaled to the volume, ready to stitch."""

    def __init__(self, fmt: _Format, clips: dict[str, bytes]) -> None:
        self.format = fmt
        self.clips = clips  # "zh/please" -> PCM frames; "chime" -> PCM frames

    @classmethod
    def load(cls, folder: Path, languages: Iterable[str], volume: int = 100) -> ClipPack:
        """Read and check a pack. Raises :class:`AudioError` naming what is missing/wrong."""
        langs = list(languages)
        names = [f"{lang}/{clip}" for lang in langs for clip in required_clips(lang)]
        missing = [n for n in names if not (folder / f"{n}.wav").is_file()]
        if missing:
            raise AudioError(f"clip pack {folder} lacks {len(missing)} clips, e.g. "
                             f"{', '.join(missing[:5])} (make one: python -m drivers.audio "
                             f"make-clips --out {folder})")
        if (folder / "chime.wav").is_file():
            names.append("chime")
        fmt: _Format | None = None
        clips = {}
        for name in names:
            clip_fmt, pcm = _read_wav(folder / f"{name}.wav")
            if fmt is not None and clip_fmt != fmt:
                raise AudioError(f"{folder / name}.wav is {clip_fmt}, the pack is {fmt}: "
                                 "one sample rate and channel count for the whole pack")
            fmt = clip_fmt
            clips[name] = _scale(pcm, volume)
        assert fmt is not None
        return cls(fmt, clips)

    def stitch(self, sequence: list[str], gap_ms: int, pause_ms: int) -> bytes:
        """One WAV of the clips in order; ``|`` in ``sequence`` marks a language pause."""
        parts: list[bytes] = []
        gap = bytes(self.format.frames(gap_ms) * 2 * self.format.channels)
        pause = bytes(self.format.frames(pause_ms) * 2 * self.format.channels)
        for name in sequence:
            if name == "|":
                parts.append(pause)
            else:
                parts.extend((self.clips[name], gap))
        return _wav_bytes(self.format, b"".join(parts))

    def duration(self, wav: bytes) -> float:
        with wave.open(io.BytesIO(wav)) as w:
            return w.getnframes() / w.getframerate()


def _read_wav(path: Path) -> tuple[_Format, bytes]:
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2 or w.getcomptype() != "NONE":
                raise AudioError(f"{path} is not 16-bit PCM")
            return _Format(w.getframerate(), w.getnchannels()), w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"{path} is not a WAV file: {exc}") from None


def _scale(pcm: bytes, volume: int) -> bytes:
    if volume == 100:
        return pcm
    samples = array.array("h", pcm)
    for i, s in enumerate(samples):
        samples[i] = s * volume // 100
    return samples.tobytes()


def _wav_bytes(fmt: _Format, pcm: bytes) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(fmt.channels)
        w.setsampwidth(2)
        w.setframerate(fmt.rate)
        w.writeframes(pcm)
    return buf.getvalue()


# --- announcements and sinks ----------------------------------------------------------------


@dataclass(slots=True)
class Announcement:
    """One announcement: what it says, and (once played) when."""

    n: int  # 1, 2, 3 … since the announcer started
    kind: Literal["call", "recall"]
    number: str
    window: int
    clips: list[str] = field(default_factory=list)  # "chime", "zh/please", "|", …
    duration_s: float = 0.0
    started_at: float | None = None  # box clock
    ended_at: float | None = None

    @property
    def filename(self) -> str:
        return f"{self.n}-{self.number}-w{self.window}.wav"


class AudioSink(Protocol):
    """Plays one stitched WAV; returns when it has finished playing."""

    async def play(self, wav: bytes, announcement: Announcement) -> None: ...


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


# --- the announcer ---------------------------------------------------------------------------


AnnouncementListener = Callable[[str, Announcement], None]  # ("start" | "end", announcement)


class Announcer:
    """Announces calls and recalls, one at a time, in order. A supervisor component.

    Args:
        settings: the validated ``audio`` section.
        sink: where the sound goes (:class:`AlsaSink`, :class:`SimSink`).
        clips_dir: the clip pack folder.
        make_missing: generate the pack with espeak-ng if it is missing (the simulator).
    """

    name = "audio"

    def __init__(self, settings: AudioConfig, *, sink: AudioSink, clips_dir: Path,
                 make_missing: bool = False) -> None:
        self.settings, self.sink = settings, sink
        self.clips_dir, self.make_missing = Path(clips_dir), make_missing
        self.pack: ClipPack | None = None
        self.listeners: list[AnnouncementListener] = []
        self.announced = 0
        self.dropped = 0
        self.failures = 0
        self.current: Announcement | None = None
        self._pending: asyncio.Queue[Announcement] = asyncio.Queue()
        self._clock: Callable[[], float] | None = None
        self.ready = asyncio.Event()  # set once the pack is loaded and events are heard

    def announce(self, number: str, window: int, kind: Literal["call", "recall"] = "call"
                 ) -> Announcement:
        """Queue an announcement (also what the box's events do). Returns it, unplayed."""
        self.announced += 1
        ann = Announcement(self.announced, kind, number, window)
        if self._pending.qsize() >= self.settings.max_pending:
            old = self._pending.get_nowait()
            self.dropped += 1
            log.warning("audio: dropped announcement of %s (queue full)", old.number)
        self._pending.put_nowait(ann)
        return ann

    def on_events(self, events: list[dict[str, Any]]) -> None:
        """Box listener: a call or a recall queues an announcement."""
        for e in events:
            if e["type"] == "ticket_called":
                self.announce(e["number"], e["window"], "call")
            elif e["type"] == "ticket_recalled":
                self.announce(e["number"], e["window"], "recall")

    async def run(self, box: Box) -> None:
        """Load the pack, then play announcements until cancelled."""
        self._clock = box.clock.now
        self.pack = await self._load()
        box.listeners.append(self.on_events)
        box.health.report(self.name, "ok")
        board = voice(box)  # the hall pages show each call as it is spoken
        board.speaking = True
        self.listeners.append(self._to_board(board))
        self.ready.set()
        try:
            while True:
                await self._play(box, await self._pending.get())
        finally:
            self.ready.clear()
            board.speaking = False
            self.listeners.pop()
            with contextlib.suppress(ValueError):
                box.listeners.remove(self.on_events)

    @staticmethod
    def _to_board(board: Voice) -> Callable[[str, Announcement], None]:
        def tell(phase: str, ann: Announcement) -> None:
            board.tell(phase, {"number": ann.number, "window": ann.window, "kind": ann.kind})
        return tell

    async def _load(self) -> ClipPack:
        s = self.settings
        if self.make_missing and not any(self.clips_dir.glob("*/*.wav")):
            log.info("audio: no clip pack in %s, making one with espeak-ng", self.clips_dir)
            await make_clips(self.clips_dir, s.languages)
        return await asyncio.to_thread(ClipPack.load, self.clips_dir, s.languages, s.volume)

    def sequence(self, ann: Announcement) -> list[str]:
        """The clips of an announcement, languages separated by ``|``."""
        assert self.pack is not None
        chime = self.settings.chime and "chime" in self.pack.clips
        return announcement_clips(self.settings.languages, ann.number, ann.window, chime=chime)

    async def _play(self, box: Box, ann: Announcement) -> None:
        assert self.pack is not None
        s = self.settings
        ann.clips = self.sequence(ann)
        wav = self.pack.stitch(ann.clips, s.gap_ms, s.pause_ms)
        ann.duration_s = self.pack.duration(wav)
        ann.started_at = box.clock.now()
        self.current = ann
        self._tell("start", ann)
        try:
            await self.sink.play(wav, ann)
            box.health.report(self.name, "ok")
        except AudioError as exc:
            self.failures += 1
            log.error("audio: announcing %s failed: %s", ann.number, exc)
            box.health.report(self.name, "fault", str(exc))
        finally:
            ann.ended_at = box.clock.now()
            self.current = None
            self._tell("end", ann)

    def _tell(self, phase: str, ann: Announcement) -> None:
        for listener in self.listeners:
            try:
                listener(phase, ann)
            except Exception:
                log.exception("announcement listener %r failed", listener)


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
            wav, err = await proc.communicate()
        if proc.returncode != 0:
            raise AudioError(f"espeak-ng failed on {lang}/{clip}: {err.decode()[:200]}")
        fmt, pcm = _read_wav_stream(wav)
        rate.append(fmt.rate)
        path = out / lang / f"{clip}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_wav_bytes(fmt, _trim(pcm, fmt)))

    try:
        async with asyncio.TaskGroup() as tg:
            for lang in langs:
                for clip in VOCABULARY[lang]:
                    tg.create_task(one(lang, clip))
    except* AudioError as failed:
        raise failed.exceptions[0] from None  # the first clip that failed says why
    out.mkdir(parents=True, exist_ok=True)
    (out / "chime.wav").write_bytes(_chime(_Format(rate[0] if rate else 22050, 1)))
    return sum(len(VOCABULARY[lang]) for lang in langs) + 1


def _read_wav_stream(data: bytes) -> tuple[_Format, bytes]:
    """espeak-ng's --stdout WAV has unknown lengths in its header: take what follows it."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("espeak-ng did not write a WAV")
    channels = int.from_bytes(data[22:24], "little")
    rate = int.from_bytes(data[24:28], "little")
    start = data.find(b"data") + 8
    pcm = data[start:]
    return _Format(rate, channels), pcm[: len(pcm) // 2 * 2]


def _trim(pcm: bytes, fmt: _Format, threshold: int = 300, keep_ms: int = 15) -> bytes:
    """Cut the silence espeak-ng leaves around a word, so stitched clips flow."""
    samples = array.array("h", pcm)
    loud = [i for i, s in enumerate(samples) if abs(s) > threshold]
    if not loud:
        return pcm
    keep = fmt.frames(keep_ms) * fmt.channels
    return samples[max(loud[0] - keep, 0): loud[-1] + keep].tobytes()


def _chime(fmt: _Format) -> bytes:
    """A two-tone ding-dong (E6 then C6), fading, 0.9 s."""
    pcm = array.array("h")
    for freq, length in ((1318.5, 0.42), (1046.5, 0.48)):
        frames = int(fmt.rate * length)
        for i in range(frames):
            envelope = math.exp(-4.0 * i / frames)
            pcm.append(int(9000 * envelope * math.sin(2 * math.pi * freq * i / fmt.rate)))
    return _wav_bytes(fmt, pcm.tobytes())


# --- command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m drivers.audio make-clips --out DIR`` | ``say NUMBER WINDOW --clips DIR``."""
    p = argparse.ArgumentParser(prog="python -m drivers.audio", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-clips", help="speak a clip pack with espeak-ng")
    mk.add_argument("--out", required=True, type=Path)
    mk.add_argument("--languages", default="zh,yue,en")
    mk.add_argument("--speed", type=int, default=150, help="words per minute")
    say = sub.add_parser("say", help="stitch one announcement into a WAV file")
    say.add_argument("number")
    say.add_argument("window", type=int)
    say.add_argument("--clips", required=True, type=Path)
    say.add_argument("--languages", default="zh,yue,en")
    say.add_argument("--out", type=Path, default=Path("announcement.wav"))
    args = p.parse_args(argv)
    langs = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
    unknown = [lang for lang in langs if lang not in VOCABULARY]
    try:
        if unknown:
            raise AudioError(f"unknown languages {unknown}; known: {sorted(VOCABULARY)}")
        if args.cmd == "make-clips":
            n = asyncio.run(make_clips(args.out, langs, speed=args.speed))
            print(f"{n} clips written to {args.out}")
        else:
            pack = ClipPack.load(args.clips, langs)
            seq = announcement_clips(langs, args.number, args.window, chime="chime" in pack.clips)
            args.out.write_bytes(pack.stitch(seq, 40, 350))
            print(f"{args.out}: {' '.join(seq)}")
    except AudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
