"""The SMS gateway adapters against a real HTTP server on loopback."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest

from central.config import SmsSettings
from central.sms import LogSms, SmsError, make_gateway
from protocols.appointment import mask_phone
from tests.sms_support import Gateway, gateway, http

__all__ = ["gateway"]  # fixtures

TEXT = "【测试网点】请注意,目前网点排队等待人数已经超过30个。 \"quoted\" & more"


async def test_a_json_post_escapes_the_text(gateway: Gateway) -> None:
    gw = http(f"{gateway.url}/sms/send", headers={"X-Api-Key": "k1"},
              body='{"mobile": "{phone}", "content": "{text}", "sign": "paidui"}')
    await gw.send("13812345678", TEXT)
    [req] = gateway.requests
    assert req["method"] == "POST" and req["path"] == "/sms/send"
    assert req["headers"]["X-Api-Key"] == "k1"
    assert req["headers"]["Content-Type"].startswith("application/json")
    assert json.loads(req["body"]) == {"mobile": "13812345678", "content": TEXT,
                                       "sign": "paidui"}


async def test_a_form_post_and_a_get_url_encode(gateway: Gateway) -> None:
    form = http(gateway.url + "/send", body="to={phone}&msg={text}",
                content_type="application/x-www-form-urlencoded")
    await form.send("13812345678", TEXT)
    assert urllib.parse.parse_qs(gateway.requests[0]["body"].decode()) == {
        "to": ["13812345678"], "msg": [TEXT]}
    get = http(gateway.url + "/send?to={phone}&msg={text}", method="GET")
    await get.send("13812345678", TEXT)
    req = gateway.requests[1]
    assert req["method"] == "GET" and req["body"] == b""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(req["path"]).query)
    assert query == {"to": ["13812345678"], "msg": [TEXT]}


async def test_refusals_and_silence_are_errors(gateway: Gateway) -> None:
    gw = http(gateway.url, timeout_s=0.5)
    gateway.status = 503
    with pytest.raises(SmsError, match="HTTP 503"):
        await gw.send("13812345678", "x")
    gateway.status = 200
    picky = http(gateway.url, success_contains='"result":"OK"')
    await picky.send("13812345678", "x")
    gateway.answer = b'{"result":"FAIL","reason":"balance"}'
    with pytest.raises(SmsError, match="lacks"):
        await picky.send("13812345678", "x")
    gateway.delay.clear()  # the gateway hangs
    with pytest.raises(SmsError, match="unreachable"):
        await gw.send("13812345678", "x")
    gateway.delay.set()


async def test_an_unreachable_gateway_is_an_error_without_the_number() -> None:
    gw = http("http://127.0.0.1:9/sms", timeout_s=1)  # nothing listens on port 9
    with pytest.raises(SmsError) as err:
        await gw.send("13812345678", "x")
    assert "13812345678" not in str(err.value)


async def test_the_log_gateway_masks_the_number(caplog: pytest.LogCaptureFixture) -> None:
    gw = LogSms()
    with caplog.at_level("INFO"):
        await gw.send("13812345678", "请注意")
    assert "138****5678" in caplog.text and "13812345678" not in caplog.text
    assert mask_phone("+8613812345678") == "+86*******5678" and mask_phone("110") == "****"


def test_the_http_adapter_needs_a_url() -> None:
    from central.config import load_centre_config
    from central.errors import CentreConfigError

    with pytest.raises(CentreConfigError, match=r"alerts\.sms"):
        load_centre_config(None, ["alerts.sms.adapter=http"])
    with pytest.raises(CentreConfigError, match=r"^sms: the http adapter needs url"):
        load_centre_config(None, ["sms.adapter=http"])
    with pytest.raises(CentreConfigError, match=r"^sms\.timeout_s"):
        load_centre_config(None, ["sms.timeout_s=0"])
    assert isinstance(make_gateway(SmsSettings()), LogSms)


async def test_the_log_gateway_keeps_an_outbox_file(tmp_path: Path) -> None:
    outbox = tmp_path / "out" / "sms.jsonl"
    gw = make_gateway(SmsSettings(outbox_file=str(outbox)))
    assert isinstance(gw, LogSms)
    await gw.send("13812345678", "验证码 123456")
    await gw.send("13912345678", TEXT)
    lines = [json.loads(x) for x in outbox.read_text(encoding="utf-8").splitlines()]
    assert lines == [{"to": "138****5678", "text": "验证码 123456"},
                     {"to": "139****5678", "text": TEXT}]
    assert gw.sent == [("138****5678", "验证码 123456"), ("139****5678", TEXT)]


async def test_a_token_is_sent_as_a_bearer_header(gateway: Gateway) -> None:
    gw = http(gateway.url + "/send", token="op-token", headers={"X-Api-Key": "k1"})
    await gw.send("13812345678", "x")
    [req] = gateway.requests
    assert req["headers"]["Authorization"] == "Bearer op-token"
    assert req["headers"]["X-Api-Key"] == "k1"
    with pytest.raises(ValueError, match="not both"):
        SmsSettings(adapter="http", url=gateway.url, token="t",
                    headers={"authorization": "Basic x"})


def test_the_centre_has_one_sms_section_and_reads_the_old_keys(
        caplog: pytest.LogCaptureFixture) -> None:
    from central.config import CentreConfig, load_centre_config
    from central.errors import CentreConfigError

    cfg = load_centre_config("examples/centre.toml")
    assert cfg.sms == SmsSettings() and cfg.alerts.sms.template == "【{branch_name}】{message}"
    new = load_centre_config(None, ["sms.adapter=http", "sms.url=https://gw/send",
                                    "sms.token=t", "customers.sms.inbound_token=in"])
    with caplog.at_level("WARNING"):
        old = load_centre_config(None, [
            "alerts.sms.adapter=http", "alerts.sms.url=https://gw/send",
            "customers.sms.gateway=http", "customers.sms.token=t",
            "customers.sms.inbound_token=in", "alerts.sms.template={message}"])
    assert old.sms == new.sms and old.sms.token == "t"
    assert old.customers.sms == new.customers.sms and old.customers.sms.inbound_token == "in"
    assert old.alerts.sms.template == "{message}"
    assert "customers.sms.gateway is read as sms.adapter" in caplog.text
    built = CentreConfig.model_validate({"customers": {"sms": {"outbox_file": "o.jsonl",
                                                                "max_length": 140}}})
    assert built.sms.outbox_file == "o.jsonl" and built.customers.sms.max_length == 140
    with pytest.raises(CentreConfigError, match=r"^customers\.sms\.url: differs from sms\.url"):
        load_centre_config(None, ["alerts.sms.url=https://a/send",
                                  "customers.sms.url=https://b/send"])
    with pytest.raises(CentreConfigError, match=r"^customers\.sms\.timeout_s"):
        load_centre_config(None, ["customers.sms.timeout_s=-1"])
