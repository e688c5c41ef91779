"""Voice announcements (SPEC B7), the box's side: what to say, when, and the sound of it.

The :class:`Announcer` hears ``ticket_called`` and ``ticket_recalled`` from the box and
plays announcements strictly one after another: a second call waits, it never cuts off
the first; a recall is announced again in full. ``listeners`` are told when each
announcement starts and ends, so displays can update in step with the voice.

Each announcement is stitched from a clip pack (:class:`ClipPack`; the words and the pack's
format are :mod:`protocols.voice`) and played by a sink, the
:class:`~controller.ports.AudioSink` the composition root chose (drivers/audio.py: ALSA's
``aplay`` on the box, or the simulator's WAV files). A missing pack is made, on the
simulator, by the clip maker it is given (espeak-ng, drivers/audio.py).

``python -m controller.voice say A023 3 --clips DIR`` stitches one announcement into a WAV.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import io
import logging
import sys
import wave
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from protocols.voice import (
    PcmFormat,
    announcement_clips,
    parse_languages,
    required_clips,
    wav_bytes,
)

from .errors import AudioError
from .ports import Announcement, AnnouncementListener, AudioSink, ClipMaker, VoiceBoard

if TYPE_CHECKING:
    from .ports import Host

__all__ = ["Announcement", "Announcer", "AudioConfig", "AudioError", "ClipPack", "main"]

log = logging.getLogger(__name__)

Language = Literal["zh", "yue", "en"]


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


class ClipPack:
    """The clips of some languages, loaded and scaled to the volume, ready to stitch."""

    def __init__(self, fmt: PcmFormat, clips: dict[str, bytes]) -> None:
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
        fmt: PcmFormat | None = None
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
        return wav_bytes(self.format, b"".join(parts))

    def duration(self, wav: bytes) -> float:
        with wave.open(io.BytesIO(wav)) as w:
            return w.getnframes() / w.getframerate()


def _read_wav(path: Path) -> tuple[PcmFormat, bytes]:
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2 or w.getcomptype() != "NONE":
                raise AudioError(f"{path} is not 16-bit PCM")
            return PcmFormat(w.getframerate(), w.getnchannels()), w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"{path} is not a WAV file: {exc}") from None


def _scale(pcm: bytes, volume: int) -> bytes:
    if volume == 100:
        return pcm
    samples = array.array("h", pcm)
    for i, s in enumerate(samples):
        samples[i] = s * volume // 100
    return samples.tobytes()


# --- the announcer ---------------------------------------------------------------------------


class Announcer:
    """Announces calls and recalls, one at a time, in order. A supervisor component.

    Args:
        settings: the validated ``audio`` section.
        sink: where the sound goes (drivers/audio.py: ``AlsaSink``, ``SimSink``).
        clips_dir: the clip pack folder.
        make_missing: makes the pack if it is missing (the simulator: espeak-ng,
            :func:`drivers.audio.make_clips`); None: a missing pack is a fault.
    """

    name = "audio"

    def __init__(self, settings: AudioConfig, *, sink: AudioSink, clips_dir: Path,
                 make_missing: ClipMaker | None = None) -> None:
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
            if self.dropped % 100 == 1:  # a flood of calls must not become a flood of logs
                log.warning("audio: dropped announcement of %s (queue full; %d dropped so "
                            "far)", old.number, self.dropped)
        self._pending.put_nowait(ann)
        return ann

    def on_events(self, events: list[dict[str, Any]]) -> None:
        """Box listener: a call or a recall queues an announcement."""
        for e in events:
            if e["type"] == "ticket_called":
                self.announce(e["number"], e["window"], "call")
            elif e["type"] == "ticket_recalled":
                self.announce(e["number"], e["window"], "recall")

    async def run(self, box: Host) -> None:
        """Load the pack, then play announcements until cancelled."""
        self._clock = box.clock.now
        # Heard from the start: a call made while the pack loads (a first start makes it,
        # seconds on a slow core, while the tellers may already call) waits in the queue
        # and is spoken once the pack is ready.
        box.listeners.append(self.on_events)
        try:
            self.pack = await self._load()
        except BaseException:
            box.listeners.remove(self.on_events)
            raise
        box.health.report(self.name, "ok")
        board = box.voice  # the hall pages show each call as it is spoken
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
    def _to_board(board: VoiceBoard) -> Callable[[str, Announcement], None]:
        def tell(phase: str, ann: Announcement) -> None:
            board.tell(phase, {"number": ann.number, "window": ann.window, "kind": ann.kind})
        return tell

    async def _load(self) -> ClipPack:
        s = self.settings
        if self.make_missing is not None and not any(self.clips_dir.glob("*/*.wav")):
            log.info("audio: no clip pack in %s, making one", self.clips_dir)
            await self.make_missing(self.clips_dir, list(s.languages))
        return await asyncio.to_thread(ClipPack.load, self.clips_dir, s.languages, s.volume)

    def sequence(self, ann: Announcement) -> list[str]:
        """The clips of an announcement, languages separated by ``|``."""
        assert self.pack is not None
        chime = self.settings.chime and "chime" in self.pack.clips
        return announcement_clips(self.settings.languages, ann.number, ann.window, chime=chime)

    async def _play(self, box: Host, ann: Announcement) -> None:
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


# --- command line ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m controller.voice say NUMBER WINDOW --clips DIR [--out FILE]``."""
    p = argparse.ArgumentParser(prog="python -m controller.voice",
                                description="stitch one announcement into a WAV file")
    sub = p.add_subparsers(dest="cmd", required=True)
    say = sub.add_parser("say", help="stitch one announcement into a WAV file")
    say.add_argument("number")
    say.add_argument("window", type=int)
    say.add_argument("--clips", required=True, type=Path)
    say.add_argument("--languages", default="zh,yue,en")
    say.add_argument("--out", type=Path, default=Path("announcement.wav"))
    args = p.parse_args(argv)
    try:
        langs = parse_languages(args.languages)
        pack = ClipPack.load(args.clips, langs)
        seq = announcement_clips(langs, args.number, args.window, chime="chime" in pack.clips)
        args.out.write_bytes(pack.stitch(seq, 40, 350))
        print(f"{args.out}: {' '.join(seq)}")
    except (ValueError, AudioError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
