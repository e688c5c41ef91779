"""A virtual ticket printer: takes ESC/POS bytes like a real one and shows what it printed.

The driver reaches it through the same byte stream as a real printer: a loopback TCP port
(like a network printer's port 9100, :meth:`SimPrinter.serve_tcp`) or a pty (like a serial
or USB printer's device file, :meth:`SimPrinter.attach_pty`). It decodes the commands our
tickets use (:mod:`protocols.escpos`) into a :class:`PrintedTicket`: text lines with their
size, weight and alignment, Chinese decoded with the printer's own encoding, the QR payload
(native, or read back from a raster image with zxing-cpp when installed) and the cut. Each
ticket is written to ``<dir>/<number>.bin`` (the bytes), ``.txt`` and ``.png``.

The files are written off the event loop, by one worker thread, which takes every ticket
ended meanwhile as one batch (a hand-over between threads per ticket cost the loop more
than the files). What was printed is exact: every ticket's ``.bin`` and ``.txt`` are
written (two small files). Its picture is drawn
only while at most ``max_drawings`` pictures wait for the worker: a printer fed faster
than it draws (the HTTP bench issues a thousand tickets a second) skips the picture of a
ticket that finds the queue full and counts it (:attr:`SimPrinter.drawings_dropped`,
logged once per hundred), instead of falling further behind and crowding the box out with
work nobody looks at.

Like a real printer it answers ``DLE EOT`` at once, and it can be out of paper, near the
end of its roll, have its cover open, or be switched off (no answer at all). Print data
received while out of paper or with the cover open waits in its buffer and prints when
the fault is cleared — which is why the driver asks before it sends.

A ticket ends at a cut, at the next ``ESC @``, at a status query after printed lines, or
when the link closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import tty
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from protocols import escpos

if TYPE_CHECKING:
    from PIL import Image as PILImage
    from PIL import ImageFont

__all__ = ["PrintedTicket", "SimPrinter", "find_cjk_font"]

log = logging.getLogger(__name__)

Paper = Literal["ok", "near_end", "out"]

_FONT_CANDIDATES = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
     "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", None),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", None),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", None),
)
_FALLBACK_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
CELL = 24  # Font A is 12x24 dots; a Chinese character 24x24


# --- what was printed ---------------------------------------------------------------------


@dataclass(slots=True)
class Span:
    text: str
    width: int = 1
    height: int = 1
    bold: bool = False


@dataclass(slots=True)
class Row:
    """One printed row: a line of text spans, a QR code, or a raster image."""

    kind: Literal["text", "qr", "image"]
    align: int = 0
    spans: list[Span] = field(default_factory=list)
    qr: str = ""  # QR payload (native, or read back from the image)
    module: int = 3
    image: PILImage.Image | None = None
    unread: bool = False  # an image not yet searched for a QR code

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.spans)

    def read_qr(self) -> str:
        """The payload of a QR image (searched once, on first use: it takes milliseconds,
        so the printer's byte stream is not held up by it)."""
        if self.unread and self.image is not None:
            self.qr, self.unread = _read_qr(self.image), False
        return self.qr


@dataclass(slots=True)
class PrintedTicket:
    """One ticket as the simulated printer printed it."""

    raw: bytes
    rows: list[Row]
    cut: str | None  # "full", "partial" or None (torn off)
    seq: int = 0

    @property
    def lines(self) -> list[str]:
        """The text lines, as printed (blank lines dropped)."""
        return [r.text for r in self.rows if r.kind == "text" and r.text.strip()]

    @property
    def qr(self) -> list[tuple[str, str]]:
        """``(how, payload)`` of each QR code: ``native`` or ``image`` (read back)."""
        return [("native" if r.kind == "qr" else "image", r.qr)
                for r in self.rows if r.kind == "qr" or (r.kind == "image" and r.read_qr())]

    @property
    def number(self) -> str:
        """The ticket number: the text printed largest."""
        texts = [r for r in self.rows if r.kind == "text" and r.text.strip()]
        if not texts:
            return ""
        big = max(texts, key=lambda r: max(s.width * s.height for s in r.spans))
        return big.text.strip()

    @property
    def text(self) -> str:
        """A plain-text picture of the ticket."""
        out = []
        for r in self.rows:
            if r.kind == "text":
                scale = max((s.width for s in r.spans), default=1)
                out.append(f"[{scale}x] {r.text}" if scale > 1 else r.text)
            elif r.kind == "qr":
                out.append(f"[QR native] {r.qr}")
            else:
                out.append(f"[QR image] {r.qr}" if r.read_qr() else
                           f"[image {r.image.size if r.image else '?'}]")
        out.append(f"[cut {self.cut}]" if self.cut else "[no cut: torn off]")
        return "\n".join(out) + "\n"


# --- the interpreter ----------------------------------------------------------------------


class _Interpreter:
    """Turns decoded commands into rows, as a printer's firmware would."""

    def __init__(self, encoding: str) -> None:
        self.firmware_encoding = encoding
        self.reset()

    def reset(self) -> None:
        self.align = 0
        self.bold = False
        self.width = self.height = 1
        self.chinese = False
        self.utf8 = False
        self.qr_module = 3
        self.qr_data = b""
        self.rows: list[Row] = []
        self.line: list[Span] = []
        self.line_align = 0
        self.pending = b""

    @property
    def has_content(self) -> bool:
        return bool(self.rows or self.line or self.pending)

    def _decode_text(self, data: bytes) -> str:
        if self.utf8:
            return data.decode("utf-8", errors="replace")
        if self.chinese:
            return data.decode(self.firmware_encoding, errors="replace")
        return data.decode("cp437", errors="replace")

    def _flush_text(self) -> None:
        if self.pending:
            if not self.line:
                self.line_align = self.align
            self.line.append(Span(self._decode_text(self.pending), self.width, self.height,
                                  self.bold))
            self.pending = b""

    def _end_line(self) -> None:
        self._flush_text()
        self.rows.append(Row("text", self.line_align if self.line else self.align,
                             self.line or [Span("", self.width, self.height)]))
        self.line = []

    def apply(self, cmd: escpos.Cmd) -> None:
        op = cmd.op
        if op == "text":
            self.pending += cmd.data
            return
        self._flush_text()
        handler = getattr(self, f"_op_{op}", None)
        if handler is not None:
            handler(cmd)

    def _op_init(self, cmd: escpos.Cmd) -> None:
        rows = self.rows
        self.reset()
        self.rows = rows

    def _op_lf(self, cmd: escpos.Cmd) -> None:
        self._end_line()

    def _op_feed(self, cmd: escpos.Cmd) -> None:
        if self.line:
            self._end_line()
        self.rows.extend(Row("text", self.align) for _ in range(min(cmd.arg, 20)))

    def _op_align(self, cmd: escpos.Cmd) -> None:
        self.align = {0: 0, 1: 1, 2: 2, 48: 0, 49: 1, 50: 2}.get(cmd.arg, self.align)

    def _op_bold(self, cmd: escpos.Cmd) -> None:
        self.bold = bool(cmd.arg & 1)

    def _op_mode(self, cmd: escpos.Cmd) -> None:
        self.bold = bool(cmd.arg & 0x08)
        self.height = 2 if cmd.arg & 0x10 else 1
        self.width = 2 if cmd.arg & 0x20 else 1

    def _op_size(self, cmd: escpos.Cmd) -> None:
        self.width, self.height = (cmd.arg >> 4 & 7) + 1, (cmd.arg & 7) + 1

    def _op_chinese(self, cmd: escpos.Cmd) -> None:
        self.chinese = bool(cmd.arg)

    def _op_charset(self, cmd: escpos.Cmd) -> None:
        self.utf8 = cmd.arg == 2

    def _op_qr_module(self, cmd: escpos.Cmd) -> None:
        self.qr_module = cmd.arg if 1 <= cmd.arg <= 16 else self.qr_module

    def _op_qr_store(self, cmd: escpos.Cmd) -> None:
        self.qr_data = cmd.data

    def _op_qr_print(self, cmd: escpos.Cmd) -> None:
        if self.line:
            self._end_line()
        payload = self.qr_data.decode("utf-8", errors="replace")
        self.rows.append(Row("qr", self.align, qr=payload, module=self.qr_module))

    def _op_raster(self, cmd: escpos.Cmd) -> None:
        if self.line:
            self._end_line()
        image = _raster_image(cmd.data, cmd.width, cmd.height)
        self.rows.append(Row("image", self.align, image=image, unread=True))


def _raster_image(data: bytes, width_bytes: int, height: int) -> PILImage.Image:
    from PIL import Image

    return Image.frombytes("1", (width_bytes * 8, height), data, "raw", "1;I")


def _read_qr(image: PILImage.Image) -> str:
    """The QR payload in a raster image, or "" (also when zxing-cpp is not installed)."""
    try:
        import zxingcpp
    except ImportError:
        return ""
    from PIL import ImageOps

    framed = ImageOps.expand(image.convert("L"), border=16, fill=255)
    for found in zxingcpp.read_barcodes(framed):
        if found.format == zxingcpp.BarcodeFormat.QRCode:
            return str(found.text)
    return ""


# --- rendering ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def find_cjk_font() -> tuple[str | None, str | None, str]:
    """``(regular path, bold path, note)`` of a font with Chinese glyphs, if installed."""
    for regular, bold in _FONT_CANDIDATES:
        if os.path.exists(regular):
            return regular, bold if bold and os.path.exists(bold) else None, regular
    if os.path.exists(_FALLBACK_FONT):
        return (_FALLBACK_FONT, None, "no CJK font installed (apt-get install fonts-noto-cjk): "
                "Chinese shows as boxes")
    return None, None, "no TrueType font installed: PNG text uses Pillow's bitmap font"


@functools.lru_cache(maxsize=8)
def _font(bold: bool) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    regular, strong, _ = find_cjk_font()
    path = strong if bold and strong else regular
    if path is None:
        return ImageFont.load_default()
    for index in range(10):  # in a .ttc, pick the Simplified Chinese face
        try:
            font = ImageFont.truetype(path, CELL, index=index)
        except OSError:
            break
        if (font.getname()[0] or "").endswith(" SC"):
            return font
    return ImageFont.truetype(path, CELL)


def _span_image(span: Span) -> PILImage.Image:
    return _text_image(span.text, span.width, span.height, span.bold)


@functools.lru_cache(maxsize=512)  # branch, captions and rules repeat on every ticket
def _text_image(text: str, width: int, height: int, bold: bool) -> PILImage.Image:
    from PIL import Image, ImageDraw

    font = _font(bold)
    left, _, right, _ = font.getbbox(text or " ")
    ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (CELL, 4)
    img = Image.new("L", (max(1, int(right - min(left, 0))), ascent + descent), 255)
    draw = ImageDraw.Draw(img)
    draw.text((-min(left, 0), 0), text, font=font, fill=0,
              stroke_width=1 if bold and font is _font(False) else 0, stroke_fill=0)
    if width == height == 1:
        return img
    return img.resize((img.width * width, img.height * height), Image.Resampling.NEAREST)


def _row_image(row: Row, dots: int) -> PILImage.Image | None:
    from PIL import Image

    if row.kind == "image":
        return row.image
    if row.kind == "qr":
        return _qr_picture(row.qr, row.module)
    parts = [_span_image(s) for s in row.spans] or [Image.new("L", (1, CELL + 6), 255)]
    line = Image.new("L", (sum(p.width for p in parts), max(p.height for p in parts)), 255)
    x = 0
    for p in parts:
        line.paste(p, (x, line.height - p.height))
        x += p.width
    return line


def _qr_picture(payload: str, module: int) -> PILImage.Image:
    """A printer-drawn QR code as it looks on paper."""
    import qrcode
    from PIL import Image

    # A fixed mask: any mask scans, and skipping the search makes the picture 5x cheaper
    # (the printer itself picks the mask of the real one).
    code = qrcode.QRCode(border=1, mask_pattern=0)
    code.add_data(payload)
    code.make(fit=True)
    matrix = code.get_matrix()
    pixels = bytes(0 if dark else 255 for line in matrix for dark in line)
    small = Image.frombytes("L", (len(matrix), len(matrix)), pixels)
    return small.resize((small.width * module, small.height * module), Image.Resampling.NEAREST)


def render_png(ticket: PrintedTicket, dots: int) -> PILImage.Image:
    """Draw a ticket as printed on paper ``dots`` wide."""
    from PIL import Image

    images = [(r.align, _row_image(r, dots)) for r in ticket.rows]
    height = sum(im.height for _, im in images if im is not None) + 2 * CELL
    page = Image.new("L", (dots, max(height, CELL)), 255)
    y = CELL
    for align, im in images:
        if im is None:
            continue
        if im.width > dots:
            im = im.crop((0, 0, dots, im.height))
        x = {0: 0, 1: (dots - im.width) // 2, 2: dots - im.width}.get(align, 0)
        page.paste(im.convert("L"), (max(x, 0), y))
        y += im.height
    return page


def _safe_name(number: str, seq: int) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "", number)
    return name or f"job-{seq:04d}"


# --- the printer ---------------------------------------------------------------------------


class SimPrinter:
    """A virtual ESC/POS ticket printer.

    Args:
        out_dir: where each ticket's ``.bin``, ``.txt`` and ``.png`` go (None: keep in memory).
        encoding: the firmware's Chinese encoding (what FS & text is read as).
        paper_mm: 58 or 80, for the PNG's width.
        png: draw PNGs (set False to only keep bytes and text).
        max_drawings: at most this many tickets wait for their PNG; a ticket finding the
            queue full is saved without one (counted in :attr:`drawings_dropped`).
            Every ticket's ``.bin`` and ``.txt`` are written whatever this is.
    """

    def __init__(self, out_dir: str | Path | None = None, *, encoding: str = "gb18030",
                 paper_mm: int = 80, png: bool = True, max_drawings: int = 32) -> None:
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.encoding = encoding
        self.dots = 576 if paper_mm >= 80 else 384
        self.png = png
        self.max_drawings = max_drawings
        self.drawings_dropped = 0
        self.paper: Paper = "ok"
        self.cover_open = False
        self.powered = True
        self.cutter_error = False
        self.tickets: list[PrintedTicket] = []
        self.status_queries = 0
        self.rejected = 0  # unknown/garbage commands skipped
        self._interp = _Interpreter(encoding)
        self._buf = b""
        self._raw = bytearray()
        self._held = b""
        self._paper_left: int | None = None
        self._changed = asyncio.Event()  # set whenever a ticket is printed or saved
        self._writes: set[asyncio.Task[None]] = set()  # the batch the worker has (0 or 1)
        self._queued: list[tuple[PrintedTicket, bool]] = []  # for the next batch (draw?)
        self._writer: ThreadPoolExecutor | None = None
        self._made = False  # out_dir exists
        self._drawing = 0  # tickets queued or with the worker that will get their PNG
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Transport] = set()
        self._pty: tuple[int, int] | None = None
        self.font_note = find_cjk_font()[2]

    # --- front panel -----------------------------------------------------------------

    @property
    def status(self) -> escpos.PrinterStatus:
        return escpos.PrinterStatus(
            online=self.powered, cover_open=self.cover_open, paper_out=self.paper == "out",
            paper_near_end=self.paper in ("near_end", "out"), cutter_error=self.cutter_error,
        )

    def set_paper(self, paper: Paper) -> None:
        """``out`` (roll empty), ``near_end`` (near-end sensor) or ``ok`` (refilled)."""
        self.paper = paper
        self._release()

    def set_cover(self, open_: bool) -> None:
        self.cover_open = open_
        self._release()

    def set_power(self, on: bool) -> None:
        """Switched off, the printer neither prints nor answers; its buffer is lost."""
        self.powered = on
        if not on:
            self._buf, self._held = b"", b""
            self._interp.reset()
            self._raw.clear()

    def run_out_after(self, nbytes: int) -> None:
        """Let the roll run out after ``nbytes`` more bytes of print data (mid-ticket)."""
        self._paper_left = nbytes

    def _stopped(self) -> bool:
        return self.paper == "out" or self.cover_open

    def _release(self) -> None:
        held, self._held = self._held, b""
        while held and not self._stopped():
            used, cmd = escpos.decode(held)
            if cmd is None:
                break
            self._print(cmd, held[:used])
            held = held[used:]
        self._held = held + self._held

    # --- the byte stream -------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Take bytes from the host; return the printer's answers (status bytes)."""
        if not self.powered:
            return b""
        self._buf += data
        answers = bytearray()
        while self._buf:
            used, cmd = escpos.decode(self._buf)
            if cmd is None:
                break
            chunk, self._buf = self._buf[:used], self._buf[used:]
            if cmd.op == "status":  # real-time: answered at once, even when stopped
                self.status_queries += 1
                answers.append(escpos.status_byte(cmd.arg, self.status))
                if not self._held and self._interp.rows:
                    self._end_ticket(None)
            elif self._stopped() or self._held:
                self._held += chunk
            else:
                self._print(cmd, chunk)
        return bytes(answers)

    def _print(self, cmd: escpos.Cmd, chunk: bytes) -> None:
        if self._paper_left is not None:
            self._paper_left -= len(chunk)
            if self._paper_left <= 0:
                self._paper_left, self.paper = None, "out"
        if cmd.op == "unknown":
            self.rejected += 1
        if cmd.op == "init" and self._interp.has_content:
            self._end_ticket(None)
        self._raw += chunk
        if cmd.op == "cut":
            self._end_ticket("partial" if cmd.arg else "full")
        else:
            self._interp.apply(cmd)

    def _end_ticket(self, cut: str | None) -> None:
        it = self._interp
        if it.line or it.pending:
            it._end_line()
        if not it.rows and cut is None:
            return
        ticket = PrintedTicket(bytes(self._raw), it.rows, cut, seq=len(self.tickets) + 1)
        self.tickets.append(ticket)
        self._raw = bytearray()
        it.reset()
        if self.out_dir is None:
            self._changed.set()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save(ticket)
            return
        draw = self.png and self._drawing < self.max_drawings
        if self.png and not draw:
            self.drawings_dropped += 1
            if self.drawings_dropped % 100 == 1:
                log.warning("sim printer: %d ticket pictures skipped so far (drawing queue "
                            "full)", self.drawings_dropped)
        self._drawing += draw
        self._queued.append((ticket, draw))
        if not self._writes:  # else the batch in hand takes these up when it is done
            self._hand_over(loop)

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """Give the worker every ticket queued so far, as one job: one hand-over between
        threads per batch, not per ticket (per ticket, they cost the loop more than the
        files did)."""
        batch, self._queued = self._queued, []
        if self._writer is None:  # one thread: drawing PNGs must not crowd the box out
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="sim-printer")
        future = loop.run_in_executor(self._writer, self._save_all, batch)
        task = loop.create_task(_wait(future), name="sim-printer-save")
        self._writes.add(task)
        task.add_done_callback(functools.partial(self._written, drawn=sum(d for _, d in batch)))

    def _save_all(self, batch: list[tuple[PrintedTicket, bool]]) -> None:
        failed = None
        for ticket, draw in batch:
            try:
                self._save(ticket, draw)
            except Exception as exc:  # the others are still written
                failed = exc
        if failed is not None:
            raise failed

    def _written(self, task: asyncio.Task[None], drawn: int) -> None:
        self._writes.discard(task)
        self._drawing -= drawn
        if not task.cancelled() and task.exception() is not None:
            log.error("sim printer could not save a ticket: %s", task.exception())
        if self._queued:
            self._hand_over(asyncio.get_running_loop())
        self._changed.set()

    def save(self, ticket: PrintedTicket) -> Path:
        """Write ``<number>.bin``, ``.txt`` and ``.png``; return the ``.bin`` path."""
        return self._save(ticket, self.png)

    def _save(self, ticket: PrintedTicket, draw: bool) -> Path:
        stem = self.save_record(ticket)
        if draw:
            self.draw(ticket, stem)
        return stem.with_suffix(".bin")

    def save_record(self, ticket: PrintedTicket) -> Path:
        """Write ``<number>.bin`` and ``.txt`` (what was printed, exactly); their stem."""
        assert self.out_dir is not None
        if not self._made:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._made = True
        stem = self.out_dir / _safe_name(ticket.number, ticket.seq)
        stem.with_suffix(".bin").write_bytes(ticket.raw)
        stem.with_suffix(".txt").write_text(ticket.text, encoding="utf-8")
        return stem

    def draw(self, ticket: PrintedTicket, stem: Path) -> Path:
        """Write ``<stem>.png``, the ticket as it looks on paper; its path."""
        from PIL import Image

        # thermal paper is black or white: a 1-bit PNG, quickly compressed
        page = render_png(ticket, self.dots).convert("1", dither=Image.Dither.NONE)
        page.save(stem.with_suffix(".png"), compress_level=1)
        return stem.with_suffix(".png")

    async def wait_tickets(self, count: int, timeout: float = 5.0) -> list[PrintedTicket]:
        """Wait until ``count`` tickets have been printed (and saved)."""
        async with asyncio.timeout(timeout):
            while len(self.tickets) < count or self._writes or self._queued:
                self._changed.clear()
                await self._changed.wait()
        return self.tickets[:count]

    # --- links -----------------------------------------------------------------------

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen like a network printer (port 9100 on a real one); return the port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _TcpSide(self), host, port)
        return int(self._server.sockets[0].getsockname()[1])

    def attach_pty(self) -> str:
        """Sit behind a pty, like a serial or USB printer; return the device path."""
        loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._pty = (master, slave)
        loop.add_reader(master, self._pty_readable)
        return os.ttyname(slave)

    def _pty_readable(self) -> None:
        assert self._pty is not None
        try:
            data = os.read(self._pty[0], 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # EIO: nobody has the device open
        answers = self.feed(data)
        if answers:
            with contextlib.suppress(OSError):
                os.write(self._pty[0], answers)

    def drop_connections(self) -> None:
        """Cut every TCP connection (a network printer losing its link)."""
        for t in list(self._conns):
            t.abort()

    async def aclose(self) -> None:
        """Stop listening, close the pty, finish writing files. Safe to call twice."""
        if self._server is not None:
            self._server.close()
            self.drop_connections()
            await self._server.wait_closed()
            self._server = None
        if self._pty is not None:
            master, slave = self._pty
            asyncio.get_running_loop().remove_reader(master)
            os.close(master)
            os.close(slave)
            self._pty = None
        while self._writes:  # (a batch done hands the next one over)
            await asyncio.gather(*self._writes, return_exceptions=True)
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.to_thread(writer.shutdown)

    async def __aenter__(self) -> SimPrinter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _wait(future: asyncio.Future[None]) -> None:
    await future


class _TcpSide(asyncio.Protocol):
    def __init__(self, sim: SimPrinter) -> None:
        self.sim = sim
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.sim._conns.add(transport)

    def data_received(self, data: bytes) -> None:
        answers = self.sim.feed(data)
        if answers and self.transport is not None:
            self.transport.write(answers)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.sim._conns.discard(self.transport)
