"""The paper ticket (SPEC A4) as ESC/POS bytes, and the printer profiles it is made for.

Pure: :func:`render_ticket` turns the ticket dict of ``controller.kiosk.ticket_info`` into
the bytes a printer is sent; no I/O. Layout, centred, on 58 or 80 mm paper::

    郑州金水路支行                      branch (bold)
    ------------------------------
    个人业务                            business (double size)
    A023                                number (5x on 80 mm, 4x on 58 mm, bold)
    您前面还有3位客户在等待办理业务
    该叫号纸只能办理挂失改密业务        the queue's notice, bold, when it has one
    [QR]                                <qr_base_url>/t/<ticket id>
    扫码查询排队进度或评价服务
    取号时间 2026-11-25 10:00:05
    (English lines under each, when enabled; 补打 Reprint on a reprint)

How a printer differs is data, not code: a :class:`PrinterProfile` (paper width, text
encoding, native or image QR, cutter), picked by name from :data:`PROFILES` and adjusted
per box (the same idea as python-escpos's ``capabilities``: ``media.width.pixels``,
``qrCode``, ``paperFullCut``/``paperPartCut``).

Encodings: ``gb18030`` and ``gbk`` switch the printer into Chinese character mode (FS &)
and send double-byte (GB18030: also four-byte) codes; ``utf-8`` selects UTF-8 with
``FS ( C`` (printers with a UTF-8 firmware). Characters GBK lacks print as ``?``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import textwrap
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from . import escpos

__all__ = [
    "ENCODINGS",
    "PROFILES",
    "PrinterProfile",
    "ahead_text",
    "get_profile",
    "qr_url",
    "render_form",
    "render_ticket",
    "text_columns",
    "wait_text",
]

Encoding = Literal["gb18030", "gbk", "utf-8"]
ENCODINGS: tuple[str, ...] = ("gb18030", "gbk", "utf-8")


@dataclass(frozen=True, slots=True)
class PrinterProfile:
    """What one kind of ticket printer can do.

    Attributes:
        name: key in :data:`PROFILES`.
        paper_mm: paper width, 58 or 80.
        dots: printable dots per line at 203 dpi (384 on 58 mm, 576 on 80 mm).
        columns: Font A (12x24 dots) characters per line; a Chinese character takes two.
        encoding: ``gb18030``, ``gbk`` or ``utf-8``.
        qr: ``native`` (GS ( k, drawn by the printer) or ``image`` (sent as a raster image).
        cutter: ``none``, ``full`` or ``partial``.
        qr_module: dots per QR module.
    """

    name: str
    paper_mm: Literal[58, 80] = 80
    dots: int = 576
    columns: int = 48
    encoding: Encoding = "gb18030"
    qr: Literal["native", "image"] = "native"
    cutter: Literal["none", "full", "partial"] = "partial"
    qr_module: int = 6
    description: str = ""

    @property
    def number_scale(self) -> int:
        """Magnification of the ticket number (fits ``T0001`` with room to spare)."""
        return 5 if self.dots >= 576 else 4

    def adjust(self, *, paper_mm: int | None = None, encoding: str | None = None,
               qr: str | None = None, cutter: str | None = None) -> PrinterProfile:
        """This profile with some capabilities overridden (from the box's config)."""
        changes: dict[str, Any] = {}
        if paper_mm is not None:
            if paper_mm not in (58, 80):
                raise ValueError(f"paper width {paper_mm} mm: expected 58 or 80")
            changes.update(_PAPER[paper_mm])
        if encoding is not None:
            if encoding not in ENCODINGS:
                raise ValueError(f"encoding {encoding!r}: expected one of {ENCODINGS}")
            changes["encoding"] = encoding
        if qr is not None:
            changes["qr"] = qr
        if cutter is not None:
            changes["cutter"] = cutter
        return dataclasses.replace(self, **changes)


_PAPER: dict[int, dict[str, Any]] = {
    58: {"paper_mm": 58, "dots": 384, "columns": 32, "qr_module": 5},
    80: {"paper_mm": 80, "dots": 576, "columns": 48, "qr_module": 6},
}

PROFILES: dict[str, PrinterProfile] = {
    p.name: p for p in (
        PrinterProfile(
            "kiosk80", **_PAPER[80], encoding="gb18030", qr="native", cutter="partial",
            description="80 mm kiosk/receipt printer with a Chinese (GB18030) font, "
                        "native QR and an auto-cutter: the usual 取号机 printer",
        ),
        PrinterProfile(
            "pos58", **_PAPER[58], encoding="gbk", qr="image", cutter="none",
            description="58 mm receipt printer with a GBK font, no QR command and a "
                        "tear bar: QR sent as an image",
        ),
        PrinterProfile(
            "utf8-80", **_PAPER[80], encoding="utf-8", qr="native", cutter="full",
            description="80 mm printer whose firmware takes UTF-8 (FS ( C), native QR, "
                        "full cut",
        ),
    )
}


def get_profile(name: str) -> PrinterProfile:
    """The profile called ``name``; :class:`KeyError` listing the known ones if none."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown printer profile {name!r}; known: {sorted(PROFILES)}") from None


# --- text helpers -------------------------------------------------------------------------


def _char_columns(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def text_columns(text: str) -> int:
    """How many Font A columns ``text`` takes (Chinese characters take two)."""
    return sum(_char_columns(ch) for ch in text)


def _wrap(text: str, columns: int) -> list[str]:
    """Break ``text`` into lines of at most ``columns`` (words kept whole for English)."""
    if text.isascii():
        return textwrap.wrap(text, max(columns, 1)) or [""]
    lines, line, used = [], "", 0
    for ch in text:
        w = _char_columns(ch)
        if used + w > columns and line:
            lines.append(line)
            line, used = "", 0
        line, used = line + ch, used + w
    return [*lines, line]


def _clean(text: str) -> str:
    """No control characters may reach the printer inside text (they are commands)."""
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text).strip()


def ahead_text(n: int) -> tuple[str, str]:
    """"您前面还有N位客户在等待办理业务" and its English."""
    en = (f"{n} customer is waiting ahead of you" if n == 1
          else f"{n} customers are waiting ahead of you")
    return f"您前面还有{n}位客户在等待办理业务", en


def wait_text(minutes: int) -> tuple[str, str]:
    """"预计等待约N分钟" and its English: the expected wait a ticket shows under "ahead"."""
    if minutes <= 0:
        return "无需等待,请留意叫号", "No wait: listen for your number"
    return f"预计等待约{minutes}分钟", f"Expected wait: about {minutes} min"


def qr_url(base_url: str, ticket: dict[str, Any]) -> str:
    """The QR payload: ``<base_url>/t/<ticket id>`` (track the ticket, rate the service)."""
    return f"{base_url.rstrip('/')}/t/{ticket['id']}"


# --- the ticket ---------------------------------------------------------------------------


class _Page:
    """Accumulates a ticket's bytes; knows the profile's width and encoding."""

    def __init__(self, profile: PrinterProfile) -> None:
        self.p = profile
        self.out = bytearray(escpos.INIT)
        self.out += escpos.UTF8_ON if profile.encoding == "utf-8" else escpos.CHINESE_ON
        self.out += escpos.align("center")

    def line(self, text: str, scale: int = 1, strong: bool = False) -> None:
        text = _clean(text)
        if not text:
            return
        if strong:
            self.out += escpos.bold(True)
        if scale != 1:
            self.out += escpos.size(scale, scale)
        for part in _wrap(text, self.p.columns // scale):
            self.out += part.encode(self.p.encoding, errors="replace") + b"\n"
        if scale != 1:
            self.out += escpos.size(1, 1)
        if strong:
            self.out += escpos.bold(False)

    def pair(self, zh: str, en: str | None, scale: int = 1, strong: bool = False) -> None:
        self.line(zh, scale, strong)
        if en:
            self.line(en, 1, strong)

    def qr(self, data: str) -> None:
        if self.p.qr == "native":
            self.out += escpos.qr_native(data, self.p.qr_module) + b"\n"
        else:
            # Centred by its own left margin: not every firmware applies ESC a to images.
            self.out += escpos.align("left") + _qr_image(data, self.p.qr_module, self.p.dots)
            self.out += escpos.align("center")

    def end(self) -> bytes:
        if self.p.cutter == "none":
            self.out += escpos.feed(5)  # past the tear bar
        else:
            self.out += escpos.feed(3) + escpos.cut(self.p.cutter == "partial")
        return bytes(self.out)


def _qr_image(data: str, module: int, dots: int) -> bytes:
    """A QR code as a centred raster image, for printers without the QR command."""
    import qrcode  # pure Python; imported here so the codec module stays light

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()
    pad = max(0, (dots - len(matrix) * module) // 2)
    width_bytes = (pad + len(matrix) * module + 7) // 8
    rows: list[bytes] = []
    for modules in matrix:
        bits = "0" * pad + "".join(("1" if m else "0") * module for m in modules)
        row = int(bits.ljust(width_bytes * 8, "0"), 2).to_bytes(width_bytes, "big")
        rows.extend([row] * module)
    return escpos.raster(rows, width_bytes)


def render_ticket(ticket: dict[str, Any], profile: PrinterProfile, *, qr_base_url: str,
                  english: bool = False) -> bytes:
    """The ESC/POS bytes of one ticket (SPEC A4).

    Args:
        ticket: the dict of ``controller.kiosk.ticket_info`` (``number``, ``queue_name``,
            ``branch_name``, ``issued_at``, ``timezone``, ``ahead``, ``notice``, ``id``...).
        profile: the printer's capabilities.
        qr_base_url: the QR code points at ``<qr_base_url>/t/<ticket id>``.
        english: add the English line under each Chinese one (when the config has it).
    """
    def en(key: str) -> str | None:
        return str(ticket.get(key) or "") or None if english else None

    page = _Page(profile)
    page.pair(ticket["branch_name"], en("branch_name_en"), strong=True)
    page.line("-" * profile.columns)
    page.pair(ticket["queue_name"], en("queue_name_en"), scale=2)
    page.line(ticket["number"], scale=profile.number_scale, strong=True)
    zh, en_ahead = ahead_text(int(ticket.get("ahead") or 0))
    page.pair(zh, en_ahead if english else None)
    if ticket.get("wait_minutes") is not None:
        zh_wait, en_wait = wait_text(int(ticket["wait_minutes"]))
        page.pair(zh_wait, en_wait if english else None)
    if ticket.get("notice"):
        page.pair(ticket["notice"], en("notice_en"), strong=True)
    page.qr(qr_url(qr_base_url, ticket))
    page.pair("扫码查询排队进度或评价服务",
              "Scan to follow your turn or rate our service" if english else None)
    when = dt.datetime.fromtimestamp(ticket["issued_at"], ZoneInfo(ticket["timezone"]))
    stamp = when.strftime("%Y-%m-%d %H:%M:%S")
    page.pair(f"取号时间 {stamp}", None)
    if ticket.get("reprint"):
        page.pair("补打", "Reprint" if english else None, strong=True)
    return page.end()


def render_form(form: dict[str, Any], profile: PrinterProfile, *, english: bool = False
                ) -> bytes:
    """The ESC/POS bytes of a ticket's pre-filled form (预填单, I2), for the teller's counter.

    Layout: the branch, the form's title (double size), the ticket number, then one line
    per field, ``label:value``, left-aligned (long values wrap), and when it was filled::

        郑州金水路支行
        存款预填单
        A023
        ------------------------------
        账号:6225880123451237
        金额:5000.00
        填单时间 2026-11-25 09:58:12

    Args:
        form: ``number``, ``branch_name``, ``title`` (``title_en``), ``fields`` (each
            ``label``, ``label_en``, ``value``), ``filled_at`` and ``timezone``.
    """
    page = _Page(profile)
    page.pair(str(form.get("branch_name") or ""), None, strong=True)
    page.pair(str(form.get("title") or "预填单"),
              str(form.get("title_en") or "") or None if english else None, scale=2)
    page.line(str(form["number"]), scale=2, strong=True)
    page.line("-" * profile.columns)
    page.out += escpos.align("left")
    for f in form.get("fields") or []:
        label = str(f.get("label") or f.get("name") or "")
        if english and f.get("label_en"):
            label = f"{label} {f['label_en']}"
        page.line(f"{label}:{f.get('value', '')}")
    page.out += escpos.align("center")
    page.line("-" * profile.columns)
    if form.get("filled_at") is not None and form.get("timezone"):
        when = dt.datetime.fromtimestamp(float(form["filled_at"]), ZoneInfo(form["timezone"]))
        page.pair(f"填单时间 {when.strftime('%Y-%m-%d %H:%M:%S')}", None)
    return page.end()
