"""What a voice announcement says, and the clip pack's format (SPEC B7).

An announcement ("请 A023 号到 3 号窗口") is a sequence of short clips per language —
Mandarin (``zh``), Cantonese (``yue``), English (``en``) — played one language after the
other, optionally after a chime. Clips come from a *clip pack*, a folder::

    <pack>/chime.wav            optional ding-dong before each announcement
    <pack>/zh/please.wav        请
    <pack>/zh/letter_a.wav      A       (… letter_z)
    <pack>/zh/d0.wav            零      (… d9)
    …

:data:`VOCABULARY` lists every clip of every language with the words it says: what the box
stitches (controller/voice.py), what a speaker records, what the espeak-ng tool speaks
(drivers/audio.py). Every clip is 16-bit PCM WAV, one sample rate and channel count for
the whole pack (:class:`PcmFormat`).

Pure: no I/O.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["VOCABULARY", "PcmFormat", "announcement_clips", "parse_languages", "phrase",
           "required_clips", "wav_bytes"]

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


# --- phrases ------------------------------------------------------------------------------


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


def parse_languages(text: str) -> list[str]:
    """``"zh,yue,en"`` → the languages in that order. Raises ValueError naming unknown ones."""
    langs = [lang.strip() for lang in text.split(",") if lang.strip()]
    unknown = [lang for lang in langs if lang not in VOCABULARY]
    if unknown:
        raise ValueError(f"unknown languages {unknown}; known: {sorted(VOCABULARY)}")
    return langs


def required_clips(language: str) -> list[str]:
    """Every clip a pack must hold for ``language``."""
    return list(VOCABULARY[language])



# --- the clips' sound format -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PcmFormat:
    """A clip pack's sound: 16-bit PCM at ``rate`` Hz, ``channels`` channels."""

    rate: int
    channels: int

    def frames(self, ms: int) -> int:
        return self.rate * ms // 1000


def wav_bytes(fmt: PcmFormat, pcm: bytes) -> bytes:
    """A WAV file of 16-bit ``pcm`` frames."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(fmt.channels)
        w.setsampwidth(2)
        w.setframerate(fmt.rate)
        w.writeframes(pcm)
    return buf.getvalue()
