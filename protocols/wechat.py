"""The WeChat official-account (公众号) message protocol, as WeChat documents it (SPEC H5).

What WeChat's servers send to a developer's URL and what they accept back:

* **URL verification** (``GET ?signature&timestamp&nonce&echostr``): ``signature`` is the
  hex SHA-1 of the token, timestamp and nonce sorted and joined (:func:`signature`); the
  answer is ``echostr`` as it came.
* **Messages** (``POST``): an ``<xml>`` document of flat elements (``ToUserName``,
  ``FromUserName`` = the follower's openid, ``CreateTime``, ``MsgType`` …): text, location,
  and events (``subscribe``, a menu ``CLICK`` with its ``EventKey``) are read here
  (:func:`parse_message`); other types parse to a :class:`Message` of that type.
* **安全模式** (safe mode): the message travels as ``<xml><ToUserName/><Encrypt/></xml>``
  with ``msg_signature`` = SHA-1 over the sorted token, timestamp, nonce and ``Encrypt``.
  ``Encrypt`` is base64 of AES-256-CBC (key = base64 of EncodingAESKey + "=", 32 bytes;
  IV = the key's first 16 bytes) over 16 random bytes + the message length (4 bytes,
  network order) + the message + the appid, padded PKCS#7 to 32-byte blocks
  (:func:`encrypt`, :func:`decrypt`). The reply is encrypted the same way, wrapped in
  ``<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>`` (:func:`encrypted_reply`).
* **Passive replies**: a text (or news) message back to the follower (:func:`text_reply`,
  :func:`news_reply`), or the bare ``success`` for none.

Parsing is deny-by-default: bodies over :data:`MAX_BODY` bytes, a DTD or entity, a root
other than ``<xml>``, nested or repeated fields, a field over :data:`MAX_FIELD` characters, a
missing or malformed openid, a bad signature, bad base64, padding or appid all raise
:class:`WeChatError` with a stable ``code``. Pure: no I/O; the 16 random bytes of an
encryption are the caller's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass, replace
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

__all__ = ["MAX_BODY", "MAX_FIELD", "Message", "WeChatError", "aes_key", "check_signature",
           "decrypt", "encrypt", "encrypted_envelope", "encrypted_reply", "message_of",
           "message_xml", "news_reply", "parse_message", "parse_xml", "signature", "text_reply"]

MAX_BODY = 16 * 1024  # WeChat's messages are a few hundred bytes; encrypted ones ~1.4 ×
MAX_FIELD = 4096  # characters in one element (a text message is at most 2,048 bytes)
BLOCK = 32  # WeChat pads to 32-byte blocks (not AES's 16)
OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
APPID = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class WeChatError(ValueError):
    """A request or message that is not WeChat's, or not well formed: ``code`` is stable
    (``bad_signature``, ``bad_xml``, ``too_large``, ``bad_message``, ``bad_encrypt``,
    ``bad_appid``, ``bad_key``)."""

    def __init__(self, code: str, detail: str) -> None:
        self.code, self.detail = code, detail
        super().__init__(f"{code}: {detail}")


# --- signatures --------------------------------------------------------------------------------


def signature(*parts: str) -> str:
    """WeChat's signature: hex SHA-1 of the parts sorted (as strings) and joined.

    URL verification and plain-mode messages sign ``(token, timestamp, nonce)``; safe mode's
    ``msg_signature`` signs ``(token, timestamp, nonce, encrypt)``."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def check_signature(given: str, *parts: str) -> None:
    """Raise ``bad_signature`` unless ``given`` is :func:`signature` of ``parts``."""
    if not hmac.compare_digest(given.strip().lower().encode(), signature(*parts).encode()):
        raise WeChatError("bad_signature", "the signature does not match")


# --- AES (安全模式) ---------------------------------------------------------------------------


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey (base64 without its "=")."""
    if len(encoding_aes_key) != 43 or not re.fullmatch(r"[A-Za-z0-9+/]{43}", encoding_aes_key):
        raise WeChatError("bad_key", "EncodingAESKey must be 43 characters of base64")
    return base64.b64decode(encoding_aes_key + "=")


def _cipher(key: bytes) -> object:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def encrypt(key: bytes, appid: str, message: bytes, random16: bytes) -> str:
    """``Encrypt`` for ``message``: base64(AES-256-CBC(random16 + len + message + appid))."""
    if len(random16) != 16:
        raise ValueError("16 random bytes, please")
    plain = random16 + struct.pack(">I", len(message)) + message + appid.encode()
    pad = BLOCK - len(plain) % BLOCK
    plain += bytes([pad]) * pad
    enc = _cipher(key).encryptor()  # type: ignore[attr-defined]
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def decrypt(key: bytes, appid: str, text: str) -> bytes:
    """The message inside ``Encrypt``, checked: base64, block size, padding, length and
    that it was sealed for ``appid``."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WeChatError("bad_encrypt", "not base64") from None
    if not raw or len(raw) % 16:
        raise WeChatError("bad_encrypt", "not whole AES blocks")
    dec = _cipher(key).decryptor()  # type: ignore[attr-defined]
    plain = dec.update(raw) + dec.finalize()
    pad = plain[-1]
    if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise WeChatError("bad_encrypt", "bad padding (wrong key?)")
    plain = plain[:-pad]
    if len(plain) < 20:
        raise WeChatError("bad_encrypt", "too short")
    (length,) = struct.unpack(">I", plain[16:20])
    if 20 + length > len(plain):
        raise WeChatError("bad_encrypt", "the length is past the end")
    if not hmac.compare_digest(plain[20 + length:], appid.encode()):
        raise WeChatError("bad_appid", "sealed for another appid")
    return plain[20:20 + length]


# --- XML ---------------------------------------------------------------------------------------


def parse_xml(body: bytes | str) -> dict[str, str]:
    """The flat fields of a WeChat ``<xml>`` document (no DTD, no entities, bounded)."""
    data = body.encode() if isinstance(body, str) else body
    if len(data) > MAX_BODY:
        raise WeChatError("too_large", f"over {MAX_BODY} bytes")
    try:
        root: Element = fromstring(data, forbid_dtd=True, forbid_entities=True,
                                   forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError, SyntaxError) as exc:
        raise WeChatError("bad_xml", type(exc).__name__) from None
    if root.tag != "xml":
        raise WeChatError("bad_xml", "the root is not <xml>")
    fields: dict[str, str] = {}
    for child in root:
        if not isinstance(child.tag, str) or len(child) or child.tag in fields:
            raise WeChatError("bad_xml", "nested or repeated fields")
        text = (child.text or "").strip()
        if len(text) > MAX_FIELD:
            raise WeChatError("too_large", f"{child.tag} is over {MAX_FIELD} characters")
        fields[child.tag] = text
    return fields


@dataclass(frozen=True, slots=True)
class Message:
    """One message from a follower (``from_user`` is their openid for this account)."""

    to_user: str
    from_user: str
    create_time: int
    msg_type: str  # text, location, event, or another WeChat type (image, voice, …)
    msg_id: str | None = None
    content: str | None = None  # text
    latitude: float | None = None  # location
    longitude: float | None = None
    label: str | None = None
    event: str | None = None  # event: subscribe, unsubscribe, CLICK, …
    event_key: str | None = None


def _number(fields: dict[str, str], name: str, low: float, high: float) -> float:
    try:
        value = float(fields[name])
    except (KeyError, ValueError):
        raise WeChatError("bad_message", f"{name} is not a number") from None
    if not low <= value <= high:  # NaN fails too
        raise WeChatError("bad_message", f"{name} is out of range")
    return value


def parse_message(body: bytes | str) -> Message:
    """A follower's message from its (plain, or already decrypted) XML."""
    return message_of(parse_xml(body))


def message_of(f: dict[str, str]) -> Message:
    for name in ("ToUserName", "FromUserName", "MsgType"):
        if not f.get(name):
            raise WeChatError("bad_message", f"no {name}")
    if not OPENID.fullmatch(f["FromUserName"]) or len(f["ToUserName"]) > 64:
        raise WeChatError("bad_message", "not an openid")
    created = f.get("CreateTime", "0")
    if not created.isascii() or not created.isdigit() or len(created) > 12:
        raise WeChatError("bad_message", "CreateTime is not a time")
    kind = f["MsgType"].lower()
    common = Message(f["ToUserName"], f["FromUserName"], int(created), kind,
                     f.get("MsgId") or None)
    if kind == "text":
        return replace(common, content=f.get("Content", ""))
    if kind == "location":
        return replace(common, latitude=_number(f, "Location_X", -90, 90),
                       longitude=_number(f, "Location_Y", -180, 180),
                       label=f.get("Label") or None)
    if kind == "event":
        event = f.get("Event", "")
        if not event:
            raise WeChatError("bad_message", "no Event")
        return replace(common, event=event.lower(), event_key=f.get("EventKey") or None)
    return common


def encrypted_envelope(body: bytes | str) -> tuple[str, str]:
    """``(ToUserName, Encrypt)`` of a safe-mode message."""
    f = parse_xml(body)
    if not f.get("Encrypt"):
        raise WeChatError("bad_message", "no Encrypt")
    return f.get("ToUserName", ""), f["Encrypt"]


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(fields: dict[str, str | int]) -> str:
    """A flat ``<xml>``: strings as CDATA, integers bare (as WeChat writes them)."""
    inner = "".join(f"<{k}>{v if isinstance(v, int) else _cdata(v)}</{k}>"
                    for k, v in fields.items())
    return f"<xml>{inner}</xml>"


def text_reply(to_user: str, from_user: str, create_time: int, content: str) -> str:
    """A passive text reply (to the follower's openid, from the account)."""
    return message_xml({"ToUserName": to_user, "FromUserName": from_user,
                        "CreateTime": create_time, "MsgType": "text", "Content": content})


def news_reply(to_user: str, from_user: str, create_time: int,
               articles: list[tuple[str, str, str]]) -> str:
    """A passive news reply: ``(title, description, url)`` per article (at most 8)."""
    items = "".join(
        "<item>" + "".join(f"<{k}>{_cdata(v)}</{k}>" for k, v in
                           (("Title", t), ("Description", d), ("Url", u))) + "</item>"
        for t, d, u in articles[:8])
    head = message_xml({"ToUserName": to_user, "FromUserName": from_user,
                        "CreateTime": create_time, "MsgType": "news",
                        "ArticleCount": len(articles[:8])})
    return head[:-len("</xml>")] + f"<Articles>{items}</Articles></xml>"


def encrypted_reply(token: str, key: bytes, appid: str, reply: str, timestamp: str,
                    nonce: str, random16: bytes) -> str:
    """A safe-mode reply: ``reply`` encrypted and signed, in WeChat's envelope."""
    enc = encrypt(key, appid, reply.encode(), random16)
    return (f"<xml>\n<Encrypt>{_cdata(enc)}</Encrypt>\n"
            f"<MsgSignature>{_cdata(signature(token, timestamp, nonce, enc))}</MsgSignature>\n"
            f"<TimeStamp>{timestamp}</TimeStamp>\n<Nonce>{_cdata(nonce)}</Nonce>\n</xml>")
