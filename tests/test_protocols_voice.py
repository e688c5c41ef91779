"""The words of a call, per language (protocols/voice.py)."""

from __future__ import annotations

import pytest

from protocols.voice import VOCABULARY, phrase


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
