"""Names customers send (registration on the phone pages and by SMS): no hidden characters.

A name is shown on staff pages, printed in exports and read out in SMS replies. Control
characters (Unicode category Cc), invisible format characters (Cf: among them the
direction overrides U+202A–U+202E and isolates U+2066–U+2069 that make ``陈abc`` display
as ``陈cba``, and zero-width joiners), line and paragraph separators (Zl, Zp) and lone
surrogates (Cs, which cannot be stored as UTF-8) are refused with a 422 ``bad_name_chars``,
not silently removed: the customer sees what was wrong. See docs/appointments.md.
"""

from __future__ import annotations

import unicodedata

from .appointments import CustomerRefused

__all__ = ["HIDDEN_CATEGORIES", "check_name", "hidden_characters"]

HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def hidden_characters(text: str) -> list[str]:
    """The code points of ``text`` a reader cannot see (``U+202E``), in order, once each."""
    found = dict.fromkeys(f"U+{ord(ch):04X}" for ch in text
                          if unicodedata.category(ch) in HIDDEN_CATEGORIES)
    return list(found)


def check_name(name: str) -> str:
    """``name`` unchanged, or :class:`CustomerRefused` ``bad_name_chars`` (422) naming the
    first hidden character by its code point (never echoing the character itself)."""
    hidden = hidden_characters(name)
    if hidden:
        raise CustomerRefused("bad_name_chars", 422,
                              f"姓名含有不可见的控制字符({hidden[0]}),请重新输入。",
                              f"The name contains an invisible control character "
                              f"({hidden[0]}); please type it again.")
    return name
