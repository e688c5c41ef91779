"""The A4 ticket: rendered to ESC/POS, fed to the virtual printer, read back."""

from __future__ import annotations

from typing import Any

import pytest
from escpos.printer import Dummy

from protocols import escpos
from protocols.ticket import PROFILES, get_profile, qr_url, render_ticket, text_columns
from sim.printer import PrintedTicket, SimPrinter
from tests.ticket_support import T_TICKET, ticket

BASE = "http://192.168.1.20:8080"


def printed(info: dict[str, Any], profile: str = "kiosk80", *, firmware: str = "gb18030",
            english: bool = False, **adjust: Any) -> tuple[bytes, PrintedTicket]:
    prof = get_profile(profile).adjust(**adjust)
    data = render_ticket(info, prof, qr_base_url=BASE, english=english)
    sim = SimPrinter(encoding=firmware, paper_mm=prof.paper_mm, png=False)
    assert sim.feed(data) == b""
    sim.feed(escpos.STATUS_QUERY)  # ends an uncut ticket, as the driver's check does
    assert len(sim.tickets) == 1
    return data, sim.tickets[0]


def test_the_printed_ticket_reads_back() -> None:
    data, t = printed(ticket())
    assert t.number == "A023"
    assert t.lines[0] == "郑州金水路支行"
    assert "个人业务" in t.lines
    assert "您前面还有7位客户在等待办理业务" in t.lines
    assert "取号时间 2026-11-25 10:05:00" in t.lines
    assert t.qr == [("native", "http://192.168.1.20:8080/t/20261125-A023")]
    assert t.cut == "partial"
    assert "您前面还有".encode("gb18030") in data  # the Chinese went out as GB18030
    assert escpos.CHINESE_ON in data


def test_the_number_is_printed_largest_and_bold() -> None:
    _, t = printed(ticket())
    row = next(r for r in t.rows if r.text == "A023")
    assert (row.spans[0].width, row.spans[0].height, row.spans[0].bold) == (5, 5, True)
    assert row.align == 1  # centred


def test_restricted_range_prints_its_notice() -> None:
    _, t = printed(T_TICKET)
    assert t.number == "T0001"
    assert "该叫号纸只能办理挂失改密业务" in t.lines
    assert "您前面还有0位客户在等待办理业务" in t.lines
    notice = next(r for r in t.rows if r.text == "该叫号纸只能办理挂失改密业务")
    assert notice.spans[0].bold


def test_no_notice_line_for_ordinary_business() -> None:
    _, t = printed(ticket())
    assert not any("只能办理" in line for line in t.lines)


def test_english_lines_only_when_configured() -> None:
    _, zh = printed(T_TICKET)
    _, both = printed(T_TICKET, english=True)
    assert not any(line.isascii() and "customer" in line for line in zh.lines)
    assert "Zhengzhou Jinshui Road Sub-branch" in both.lines
    assert "Lost card / password reset" in both.lines
    assert "0 customers are waiting ahead of you" in both.lines
    assert ("This ticket is only for reporting a lost card or resetting a password"
            in " ".join(both.lines))  # wrapped at a word


def test_reprint_is_marked() -> None:
    _, t = printed(ticket(reprint=True), english=True)
    assert "补打" in t.lines and "Reprint" in t.lines


RARE = "𠮷"  # U+20BB7: four bytes in GB18030, not in GBK


@pytest.mark.parametrize(("encoding", "expect"), [
    ("gb18030", f"{RARE}野家支行"), ("gbk", "?野家支行"), ("utf-8", f"{RARE}野家支行"),
])
def test_each_encoding(encoding: str, expect: str) -> None:
    info = ticket(branch_name=f"{RARE}野家支行")
    data, t = printed(info, encoding=encoding, firmware="gbk" if encoding == "gbk" else "gb18030")
    assert t.lines[0] == expect
    assert "您前面还有7位客户在等待办理业务" in t.lines
    if encoding == "utf-8":
        assert escpos.UTF8_ON in data and escpos.CHINESE_ON not in data
        assert "您前面".encode() in data
    else:
        assert escpos.CHINESE_ON in data
        assert "您前面".encode("gbk") in data  # GBK and GB18030 share the two-byte codes
    if encoding == "gb18030":
        assert RARE.encode("gb18030") in data and len(RARE.encode("gb18030")) == 4


def test_utf8_bytes_on_a_gb18030_printer_are_mojibake_so_the_profile_matters() -> None:
    data = render_ticket(ticket(), get_profile("kiosk80").adjust(encoding="gb18030"),
                         qr_base_url=BASE)
    sim = SimPrinter(encoding="gb18030", png=False)
    sim.feed(data.replace(escpos.CHINESE_ON, b"").replace("郑州金水路支行".encode("gb18030"),
                                                         "郑州金水路支行".encode()))
    assert sim.tickets[0].lines[0] != "郑州金水路支行"


def test_native_and_image_qr_carry_the_same_payload() -> None:
    native_bytes, native = printed(ticket(), qr="native")
    image_bytes, image = printed(ticket(), qr="image")
    url = qr_url(BASE, ticket())
    assert native.qr == [("native", url)]
    assert image.qr == [("image", url)]  # read back from the raster with zxing-cpp
    assert b"\x1d(k" in native_bytes and b"\x1dv0" not in native_bytes
    assert b"\x1dv0" in image_bytes and b"\x1d(k" not in image_bytes


def test_image_qr_fits_the_paper_and_is_centred() -> None:
    for mm in (58, 80):
        prof = get_profile("kiosk80").adjust(paper_mm=mm, qr="image")
        cmds, _ = escpos.decode_all(render_ticket(ticket(), prof, qr_base_url=BASE))
        image = next(c for c in cmds if c.op == "raster")
        assert image.width * 8 <= prof.dots
        rows = [image.data[i:i + image.width] for i in range(0, len(image.data), image.width)]
        first_dot = min(r.index(next(b for b in r if b)) for r in rows if any(r)) * 8
        assert first_dot >= (prof.dots - image.width * 8) // 2 - 8  # padded towards centre


def test_paper_width_wraps_lines() -> None:
    long_name = "中国某某银行股份有限公司河南省分行郑州金水路支行营业部"
    for name, cols in (("pos58", 32), ("kiosk80", 48)):
        _, t = printed(ticket(branch_name=long_name), name,
                       firmware=get_profile(name).encoding)
        assert all(text_columns(r.text) <= cols // max(s.width for s in r.spans)
                   for r in t.rows if r.kind == "text" and r.spans)
        assert "".join(t.lines).startswith(long_name)


def test_cutter_profiles() -> None:
    assert printed(ticket(), "pos58", firmware="gbk")[1].cut is None
    assert printed(ticket(), "utf8-80")[1].cut == "full"
    assert printed(ticket(), "kiosk80", cutter="none")[1].cut is None


def test_control_characters_in_config_text_never_become_commands() -> None:
    data, t = printed(ticket(branch_name="郑州\x1b@\x1dV\x00支行\n"))
    assert t.lines[0] == "郑州 @ V 支行"
    assert len([c for c in escpos.decode_all(data)[0] if c.op == "init"]) == 1


def test_profiles_are_data() -> None:
    assert {p.paper_mm for p in PROFILES.values()} == {58, 80}
    assert {p.encoding for p in PROFILES.values()} == {"gb18030", "gbk", "utf-8"}
    assert {p.qr for p in PROFILES.values()} == {"native", "image"}
    with pytest.raises(KeyError, match="known"):
        get_profile("tm-nope")
    with pytest.raises(ValueError):
        get_profile("kiosk80").adjust(paper_mm=76)


def test_our_decoder_reads_python_escpos_cuts() -> None:
    """python-escpos feeds then sends GS V 1 for a partial cut; we send GS V 66 0 (feed to
    the cutter and cut). The virtual printer reads both as a partial cut."""
    ref = Dummy()
    ref.cut(mode="PART")
    cmds, tail = escpos.decode_all(ref.output)
    assert tail == b"" and [c.op for c in cmds] == ["feed", "cut"] and cmds[-1].arg == 1
    assert escpos.decode(escpos.cut(True))[1] == escpos.Cmd("cut", arg=1)
