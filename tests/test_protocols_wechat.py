"""The WeChat official-account codec (protocols/wechat.py) against WeChat's documented
algorithm: the published test vectors of wechatpy (tests/test_crypto.py, the same
PrpCrypto for official and work accounts) and of the Rust SDKs, then junk that must be a
clear :class:`WeChatError`, never a crash."""

from __future__ import annotations

import base64
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import wechat as wx

# wechatpy's CryptoTestCase
TOKEN = "123456"
AES = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
APPID = "wx49f0ab532d5d035a"
FIXED = b"1234567890123456"  # PrpCryptoMock.get_random_string

DECRYPT_ME = (
    "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrs"
    "TyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+B"
    "iYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vX"
    "UaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShy"
    "qio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=")
REPLY = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
ENCRYPTED_REPLY = """<xml>
<Encrypt><![CDATA[9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3]]></Encrypt>
<MsgSignature><![CDATA[407518b7649e86ef23978113f92d27afa9296533]]></MsgSignature>
<TimeStamp>1411525903</TimeStamp>
<Nonce><![CDATA[461056294]]></Nonce>
</xml>"""


def test_signatures_match_the_published_vectors() -> None:
    # wechatpy-labrador: get_signature(123456, "test", "rust") with token "test"
    assert wx.signature("test", "123456", "test", "rust") == \
        "d6056f2bb3ad3e30f4afa5ef90cc9ddcdc7b7b27"
    # wechatpy: the URL check's msg_signature over the echostr
    echo = ("4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6"
            "p+Q==")
    wx.check_signature("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", TOKEN, "1411443780",
                       "437374425", echo)
    with pytest.raises(wx.WeChatError) as err:  # one digit of the nonce changed
        wx.check_signature("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", TOKEN, "1411443780",
                           "437374424", echo)
    assert err.value.code == "bad_signature"
    key = wx.aes_key(AES)
    assert wx.decrypt(key, APPID, echo).isdigit()  # the echostr is a number to echo back


def test_aes_matches_the_published_vectors() -> None:
    key = wx.aes_key(AES)
    assert len(key) == 32
    # the Rust SDK's PrpCrypto: "test" for appid "rust" with the fixed random string
    assert wx.encrypt(key, "rust", b"test", FIXED) == \
        "9s4gMv99m88kKTh/H8IdkNiFGeG9pd7vNWl50fGRWXY="
    assert wx.decrypt(key, "rust", "9s4gMv99m88kKTh/H8IdkNiFGeG9pd7vNWl50fGRWXY=") == b"test"
    # wechatpy's encrypt_message: byte for byte, envelope and signature included
    assert wx.encrypted_reply(TOKEN, key, APPID, REPLY, "1411525903", "461056294",
                              FIXED) == ENCRYPTED_REPLY
    # wechatpy's decrypt_message: the signature over Encrypt, then the message inside
    wx.check_signature("74d92dfeb87ba7c714f89d98870ae5eb62dff26d", TOKEN, "1411525903",
                       "461056294", DECRYPT_ME)
    inner = wx.parse_xml(wx.decrypt(key, APPID, DECRYPT_ME))
    assert inner["Content"] == "test" and inner["FromUserName"] == "messense"
    with pytest.raises(wx.WeChatError) as err:
        wx.decrypt(key, "wx0000000000000000", DECRYPT_ME)
    assert err.value.code == "bad_appid"


def test_the_padding_is_to_32_byte_blocks_with_the_length_in_network_order() -> None:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = wx.aes_key(AES)
    for size in (0, 1, 11, 12, 13, 44, 100):
        msg = bytes(range(size % 256))[:size]
        enc = base64.b64decode(wx.encrypt(key, APPID, msg, FIXED))
        d = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
        plain = d.update(enc) + d.finalize()
        body = 16 + 4 + size + len(APPID)
        pad = 32 - body % 32
        assert len(plain) == body + pad and plain[-pad:] == bytes([pad]) * pad
        assert plain[:16] == FIXED and struct.unpack(">I", plain[16:20])[0] == size
        assert wx.decrypt(key, APPID, base64.b64encode(enc).decode()) == msg


def test_messages_of_each_kind() -> None:
    text = wx.parse_message(
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oUser_1-x]]>"
        "</FromUserName><CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        "<Content><![CDATA[ 你好 ]]></Content><MsgId>1234567890123456</MsgId></xml>")
    assert (text.msg_type, text.from_user, text.content, text.msg_id) == \
        ("text", "oUser_1-x", "你好", "1234567890123456")
    where = wx.parse_message(
        "<xml><ToUserName>gh_1</ToUserName><FromUserName>oU</FromUserName><CreateTime>1"
        "</CreateTime><MsgType>location</MsgType><Location_X>34.7570</Location_X>"
        "<Location_Y>113.6650</Location_Y><Scale>15</Scale><Label>金水路</Label></xml>")
    assert (where.latitude, where.longitude, where.label) == (34.757, 113.665, "金水路")
    click = wx.parse_message(
        "<xml><ToUserName>gh_1</ToUserName><FromUserName>oU</FromUserName><CreateTime>1"
        "</CreateTime><MsgType>event</MsgType><Event>CLICK</Event><EventKey>MY_TICKETS"
        "</EventKey></xml>")
    assert (click.event, click.event_key) == ("click", "MY_TICKETS")
    sub = wx.parse_message(wx.message_xml({"ToUserName": "gh_1", "FromUserName": "oU",
                                           "CreateTime": 1, "MsgType": "event",
                                           "Event": "subscribe"}))
    assert sub.event == "subscribe" and sub.event_key is None
    image = wx.parse_message(wx.message_xml({"ToUserName": "gh_1", "FromUserName": "oU",
                                             "CreateTime": 1, "MsgType": "image"}))
    assert image.msg_type == "image"


def test_replies_are_xml_wechat_reads_back() -> None:
    tricky = "预约码]]>123 <b>&amp;"
    back = wx.parse_xml(wx.text_reply("oU", "gh_1", 7, tricky))
    assert back == {"ToUserName": "oU", "FromUserName": "gh_1", "CreateTime": "7",
                    "MsgType": "text", "Content": tricky}
    news = wx.news_reply("oU", "gh_1", 7, [("排号", "A004", "https://x/t")])
    assert "<ArticleCount>1</ArticleCount>" in news and "<Title><![CDATA[排号]]>" in news


@pytest.mark.parametrize(("body", "code"), [
    ("<!DOCTYPE xml [<!ENTITY a 'aaaa'>]><xml><Content>&a;</Content></xml>", "bad_xml"),
    ('<!DOCTYPE x SYSTEM "file:///etc/passwd"><xml/>', "bad_xml"),
    ("<xml><ToUserName>a</ToUserName><ToUserName>b</ToUserName></xml>", "bad_xml"),
    ("<xml><A><B>nested</B></A></xml>", "bad_xml"),
    ("<notxml/>", "bad_xml"),
    ("<xml><Content>" + "x" * 5000 + "</Content></xml>", "too_large"),
    ("<xml>" + " " * (wx.MAX_BODY + 1) + "</xml>", "too_large"),
    ("<xml><ToUserName>g</ToUserName><FromUserName>o U</FromUserName>"
     "<MsgType>text</MsgType></xml>", "bad_message"),
    ("<xml><ToUserName>g</ToUserName><FromUserName>oU</FromUserName><MsgType>location"
     "</MsgType><Location_X>nan</Location_X><Location_Y>1</Location_Y></xml>", "bad_message"),
    ("<xml><ToUserName>g</ToUserName><FromUserName>oU</FromUserName><MsgType>location"
     "</MsgType><Location_X>91</Location_X><Location_Y>1</Location_Y></xml>", "bad_message"),
    ("<xml><ToUserName>g</ToUserName><FromUserName>oU</FromUserName>"
     "<CreateTime>-1</CreateTime><MsgType>text</MsgType></xml>", "bad_message"),
    ("<xml><ToUserName>g</ToUserName><FromUserName>oU</FromUserName><MsgType>event"
     "</MsgType></xml>", "bad_message"),
])
def test_refused_documents_say_why(body: str, code: str) -> None:
    with pytest.raises(wx.WeChatError) as err:
        wx.parse_message(body)
    assert err.value.code == code


def test_keys_and_ciphertexts_that_are_not_wechats_are_refused() -> None:
    for bad in ("", "short", AES + "=", AES[:-1] + "!"):
        with pytest.raises(wx.WeChatError) as err:
            wx.aes_key(bad)
        assert err.value.code == "bad_key"
    key = wx.aes_key(AES)
    other = wx.aes_key("A" * 43)
    for text in ("", "not base64!", "QUJD", base64.b64encode(b"x" * 32).decode(),
                 wx.encrypt(other, APPID, b"hello", FIXED)):
        with pytest.raises(wx.WeChatError) as err:
            wx.decrypt(key, APPID, text)
        assert err.value.code == "bad_encrypt"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=600), st.text(max_size=600),
                 st.text(max_size=200).map(lambda s: f"<xml><Content>{s}</Content></xml>"),
                 st.dictionaries(st.sampled_from(["ToUserName", "FromUserName", "MsgType",
                                                  "CreateTime", "Location_X", "Location_Y",
                                                  "Event", "EventKey", "Content"]),
                                 st.text(max_size=30)).map(
                     lambda d: wx.message_xml(dict(d)))))
def test_junk_is_refused_never_a_crash(body: bytes | str) -> None:
    try:
        msg = wx.parse_message(body)
    except wx.WeChatError as exc:
        assert exc.code in ("bad_xml", "too_large", "bad_message")
    else:
        assert wx.OPENID.fullmatch(msg.from_user)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.text(max_size=60), st.binary(min_size=16, max_size=16))
def test_junk_ciphertexts_and_signatures_are_refused(text: str, sig: str, rnd: bytes) -> None:
    key = wx.aes_key(AES)
    try:
        wx.decrypt(key, APPID, text)
    except wx.WeChatError as exc:
        assert exc.code in ("bad_encrypt", "bad_appid")
    with pytest.raises(wx.WeChatError):
        wx.check_signature(sig, TOKEN, "1", "2", text)
    assert wx.decrypt(key, APPID, wx.encrypt(key, APPID, text.encode(), rnd)) == text.encode()
