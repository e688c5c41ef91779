"""Kiosk media files (A10, G2): which kinds the box shows, and what their bytes must be.

Pure, no I/O. :func:`media_type` decides a file's content type from its name *and* its
first bytes: the extension must be one of :data:`TYPES` and the bytes must begin with that
type's signature (magic number), so an HTML page named ``offer.png`` is refused, not
served. The content type the box sends is the one decided here, never a guess.

SVG is not a kind we accept, at the centre's upload, at the box's ``cmd/media`` or when
the box serves its media folder: an SVG is an XML document that may carry script, and a
file opened by itself (not as an ``<img>``) would run it on the box's origin, in whatever
session the browser holds there (a lobby manager's). Banners and posters are PNG, JPEG or
WebP; animations GIF or a video.

========  ============  ============================================================
ext       type          first bytes
========  ============  ============================================================
.png      image/png     ``89 50 4E 47 0D 0A 1A 0A``
.jpg      image/jpeg    ``FF D8 FF``
.gif      image/gif     ``GIF87a`` or ``GIF89a``
.webp     image/webp    ``RIFF`` <size:4> ``WEBP``
.mp4      video/mp4     <size:4> ``ftyp`` <brand> (an ISO base media brand)
.webm     video/webm    ``1A 45 DF A3`` (EBML) with DocType ``webm`` in the header
.ogv      video/ogg     ``OggS``
========  ============  ============================================================
"""

from __future__ import annotations

__all__ = [
    "HEAD_BYTES", "IMAGES", "MAX_MEDIA_BYTES", "MAX_MEDIA_FILES", "MAX_MEDIA_FOLDER_BYTES",
    "MEDIA_TYPES", "TYPES", "VIDEOS", "NotMedia", "media_type", "sniff",
]

HEAD_BYTES = 64  # how much of a file :func:`sniff` looks at

TYPES: dict[str, str] = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".webp": "image/webp", ".mp4": "video/mp4", ".webm": "video/webm", ".ogv": "video/ogg",
}
IMAGES = frozenset(e for e, t in TYPES.items() if t.startswith("image/"))
VIDEOS = frozenset(e for e, t in TYPES.items() if t.startswith("video/"))
MEDIA_TYPES = frozenset(TYPES)  # what the box shows and the centre accepts; never .svg
MAX_MEDIA_BYTES = 2_500_000  # one file; base64 of it fits an MQTT message of the protocol
# What a box keeps in its media folder (a push that would leave more is refused; the
# centre's per-branch quotas default to these, central/media.py)
MAX_MEDIA_FILES = 40
MAX_MEDIA_FOLDER_BYTES = 100_000_000  # 40 files of the 2.5 MB a push may carry

# ISO base media file brands of MP4 video players accept (not HEIF images, not QuickTime).
MP4_BRANDS = frozenset({b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42",
                        b"avc1", b"dash", b"M4V ", b"MSNV"})


class NotMedia(ValueError):
    """A file the box will not show; ``problem`` says why, in English and Chinese."""

    def __init__(self, problem: str, problem_zh: str) -> None:
        self.problem, self.problem_zh = problem, problem_zh
        super().__init__(problem)


def sniff(head: bytes) -> str | None:
    """The content type the first bytes of a file announce, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in MP4_BRANDS:
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in head[:HEAD_BYTES]:
        return "video/webm"
    if head.startswith(b"OggS"):
        return "video/ogg"
    return None


def media_type(name: str, head: bytes) -> str:
    """The content type to serve ``name`` with, given its first :data:`HEAD_BYTES` bytes.

    Raises :class:`NotMedia` when the extension is not a kind we show (SVG among them) or
    the bytes are not what the extension says.
    """
    dot = name.rfind(".")
    ext = name[dot:].lower() if dot > 0 else ""
    declared = TYPES.get(ext)
    if declared is None:
        kinds = ", ".join(sorted(TYPES))
        raise NotMedia(f"{name}: not an image or video the kiosk shows ({kinds})",
                       f"{name}:不是取号机可显示的图片或视频({kinds})")
    found = sniff(head)
    if found != declared:
        what = found or "unknown bytes"
        raise NotMedia(f"{name}: the bytes are not {declared} (they look like {what})",
                       f"{name}:文件内容与类型不符,应为 {declared},实为 {what}")
    return declared
