"""Helpers for the WeChat tests: the account's settings as ``--set`` overrides, a simulated
follower (sim/wechat.py) talking to a test centre's app, and the branch's live picture."""

from __future__ import annotations

from typing import Any

import httpx

from central.service import Centre
from common.clock import ManualClock
from sim.wechat import Follower
from tests.uplink_support import BRANCH

TOKEN = "paiduiWeChatToken1"
APPID = "wx5f1e2d3c4b5a6978"
SECRET = "sim-app-secret-0123456789abcdef"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters of base64
HERE = (34.7700, 113.6800)  # a few hundred metres from the example branch


def wechat_sets(mode: str = "plain", api: str | None = None, *more: str) -> list[str]:
    """The ``[wechat]`` overrides of a test centre's config."""
    sets = ["wechat.enabled=true", f"wechat.token={TOKEN}", f"wechat.appid={APPID}",
            f"wechat.mode={mode}", "http.public.enabled=false"]  # the edge: its own tests
    if mode == "safe":
        sets.append(f"wechat.encoding_aes_key={AES_KEY}")
    if api is not None:
        sets += [f"wechat.api_base={api}", f"wechat.appsecret={SECRET}"]
    return sets + list(more)


def follower(api: httpx.AsyncClient, safe: bool = False, openid: str = "oFollowerWang01",
             **kw: Any) -> Follower:
    return Follower(api, TOKEN, APPID, openid, AES_KEY if safe else None, **kw)


async def put_live(centre: Centre, clock: ManualClock, waiting: dict[str, int]) -> None:
    """Store the example branch's live picture (what its box reports over the uplink)."""
    assert centre.customers is not None
    live = {"v": 1, "branch": BRANCH, "at": clock.now(), "status": {
        "branch_name": "郑州金水路支行", "waiting_total": sum(waiting.values()),
        "day": "2026-11-25", "windows": [],
        "queues": [{"id": q, "name": {"A": "个人业务", "B": "对公业务"}.get(q, q),
                    "waiting": n} for q, n in waiting.items()]}}
    await centre.customers.appointments.pool.read(
        lambda st: st.save_live({BRANCH: {"online": True}}, {BRANCH: live}, {}))
