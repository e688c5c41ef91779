"""The short-message command grammar (protocols/sms.py): every command, every mistake."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import sms


@pytest.mark.parametrize("text,command", [
    ("CXPD 1001010001", sms.QueueStatus("1001010001")),
    ("cxpd+1001010001", sms.QueueStatus("1001010001")),  # the list's "+" for a space
    ("ＣＸＰＤ　１００１０１０００１", sms.QueueStatus("1001010001")),  # full-width
    ("YY 1001010001 a 3", sms.Book("1001010001", "A", 3)),
    ("yy,1001010001,A,3,1126", sms.Book("1001010001", "A", 3, (11, 26))),
    ("CXYY", sms.MyBookings()),
    (" QXYY  312345 ", sms.Cancel("312345")),
    ("ZC 张三 41010519900307123x", sms.Register("张三", "41010519900307123X")),
    ("BZ", sms.Help()),
    ("？", sms.Help()),
    ("PJ 5", sms.Rate(5)),  # the latest ticket this phone was called for (H6, C3)
    ("ｐｊ　ａ０１２　４", sms.Rate(4, "A012")),
    ("PJ+A012+1", sms.Rate(1, "A012")),
])
def test_commands_parse(text: str, command: sms.SmsCommand) -> None:
    assert sms.parse(text) == command


@pytest.mark.parametrize("text,why", [
    ("", "空短信"),
    ("HELLO", "未知指令"),
    ("CXPD", "CXPD 网点号"),
    ("CXPD 10", "CXPD 网点号"),
    ("YY 1001010001 A", "YY 网点号"),
    ("YY 1001010001 A 0", "YY 网点号"),
    ("YY 1001010001 A 12", "YY 网点号"),
    ("YY 1001010001 A 3 1340", "YY 网点号"),
    ("CXYY 1", "CXYY"),
    ("QXYY 12345", "QXYY"),
    ("QXYY 012345", "QXYY"),
    ("ZC 张三", "ZC 姓名"),
    ("ZC 张三 1234", "ZC 姓名"),
    ("PJ", "PJ 分数"),
    ("PJ 0", "PJ 分数"),
    ("PJ 10", "PJ 分数"),
    ("PJ A012", "PJ 分数"),
    ("PJ A0123456 3", "PJ 分数"),
    ("PJ A012 5 5", "PJ 分数"),
    ("PJ ٥", "PJ 分数"),  # an Arabic-Indic five is not a score here
])
def test_malformed_messages_get_the_help_with_the_reason(text: str, why: str) -> None:
    got = sms.parse(text)
    assert isinstance(got, sms.Help) and got.problem is not None and why in got.problem


@given(st.text(max_size=200))
def test_parse_never_crashes(text: str) -> None:
    assert sms.parse(text) is not None


@given(st.text(max_size=60))
def test_a_rating_message_is_a_score_of_one_to_nine_or_the_help(rest: str) -> None:
    got = sms.parse("PJ " + rest)
    assert isinstance(got, sms.Rate | sms.Help)
    if isinstance(got, sms.Rate):
        assert 1 <= got.score <= 9 and (got.number is None or got.number.isascii())


def test_the_help_fits_two_messages_and_long_replies_are_cut_and_numbered() -> None:
    parts = sms.split(sms.HELP, 70)
    assert 1 <= len(parts) <= 2 and all(len(p) <= 70 for p in parts)
    long = ";".join(f"A{i:03d} 等待{i}人" for i in range(40))
    cut = sms.split(long, 70)
    assert all(len(p) <= 70 for p in cut)
    assert cut[0].startswith("(1/") and cut[-1].startswith(f"({len(cut)}/")
    def bare(t: str) -> str:
        return t.replace(";", "").replace(" ", "")

    assert bare("".join(p.split(")", 1)[1] for p in cut)) == bare(long)  # nothing lost
    assert sms.split("短", 70) == ["短"]


@given(st.text(min_size=1, max_size=400), st.integers(20, 160))
def test_split_keeps_every_part_within_the_limit(text: str, limit: int) -> None:
    assert all(len(p) <= limit for p in sms.split(text, limit))
