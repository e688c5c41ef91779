"""The centre's ``[wechat]`` section (docs/config.md, docs/integrations.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["WeChatSettings", "WeChatTemplates"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WeChatTemplates(_Model):
    """Template message ids (模板消息) of the account, as the WeChat admin console lists
    them; none: the notice goes as a customer-service text message instead."""

    near: str | None = Field(None, max_length=64)  # "your turn is near"
    called: str | None = Field(None, max_length=64)  # "called to window N"


class WeChatSettings(_Model):
    """The official account (公众号) the centre answers for. Off unless ``enabled``."""

    enabled: bool = False
    token: str = Field("", max_length=32)  # the Token set in WeChat's console (服务器配置)
    appid: str = Field("", pattern=r"^[A-Za-z0-9_]{0,64}$")
    appsecret: str | None = None  # for the API (access_token); none: no API calls
    encoding_aes_key: str | None = Field(None, pattern=r"^[A-Za-z0-9+/]{43}$")
    mode: Literal["plain", "safe"] = "plain"  # 明文模式 or 安全模式 (AES)
    api_base: str = "https://api.weixin.qq.com"  # or the simulator's http://127.0.0.1:…
    api_timeout_s: float = Field(5.0, gt=0, le=60)
    max_age_s: float = Field(300.0, ge=10, le=3600)  # a request's timestamp, either way
    reply_within_s: float = Field(4.0, gt=0, le=4.5)  # else "success" now, the answer later
    # as a customer-service message (WeChat waits 5 s for a passive reply)
    dialogue_ttl_s: float = Field(900.0, gt=0, le=86400)  # a conversation's state lives this
    nearby: int = Field(5, ge=1, le=9)  # branches listed for a location
    radius_km: float = Field(10.0, gt=0, le=200)
    slots_listed: int = Field(6, ge=1, le=8)  # bookable slots offered after a business
    templates: WeChatTemplates = WeChatTemplates()

    @model_validator(mode="after")
    def _complete(self) -> WeChatSettings:
        if self.enabled:
            if not self.token or not self.appid:
                raise ValueError("wechat.token and wechat.appid are needed when enabled")
            if self.mode == "safe" and not self.encoding_aes_key:
                raise ValueError("wechat.encoding_aes_key is needed in safe mode")
        return self
