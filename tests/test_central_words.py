"""Plain words in what the centre hands out (issue 17): the wait bands say the same minutes
in Chinese and English, wherever they are shown, and the Excel export cites no file of
the software."""

from __future__ import annotations

import io
import re

from central.figures import WAIT_BAND_WORDS, WAIT_BANDS
from central.reports.catalog import BANDS, COL, Column, Report
from central.reports.export import to_xlsx
from central.reports.scope import Period, Scope


def minutes(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


def test_each_wait_band_names_the_same_minutes_in_both_languages() -> None:
    assert len(WAIT_BAND_WORDS) == len(WAIT_BANDS) == len(BANDS)
    for band, (zh, en) in zip(BANDS, WAIT_BAND_WORDS, strict=True):
        for key in (band, f"{band}_pct"):
            col = COL[key]
            assert minutes(col.title) == minutes(col.title_en), (col.title, col.title_en)
            assert col.title.startswith(zh) and col.title_en.startswith(en)


def test_the_workbook_cites_no_file_of_the_software_but_says_what_a_wait_is() -> None:
    from openpyxl import load_workbook

    report = Report("wait-by-type", "客户平均等待时间及分布", "Waits", "E1",
                    Period("day", "2026-11-25"), Scope(prefixes=("41",)),
                    "2026-11-25T10:00:00+08:00", [Column("waited", "等待人数", "Waited", "people")],
                    [{"waited": 3}], notes=["等待时间 = 第一次叫号 − 取号"])
    ws = load_workbook(io.BytesIO(to_xlsx(report))).active
    text = [str(c.value) for row in ws.iter_rows() for c in row if c.value is not None]
    assert not [t for t in text if re.search(r"[\w/]+\.(md|py|toml|js)\b|docs/", t)], text
    assert any("第一次叫号" in t and "first call" in t for t in text[:6]), text[:6]
