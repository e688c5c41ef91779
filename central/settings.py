"""The centre's ``[web]`` section: who may log in, how sessions behave, the demo organisation,
and how often the live dashboard looks at the store.

.. code-block:: toml

    [web]
    session_hours = 12
    secure_cookies = "auto"          # Secure cookies when the request came over https
    login_attempts = 5               # free failed logins per address and per account, then
    login_address_max_s = 3600       # 30 s doubling to an hour per address, and
    login_account_max_s = 60         # 1 s doubling to a minute per account
    [web.admin]                      # created once, when the users table is empty
    user = "admin"
    password = "…"                   # demo only; or password_hash = "scrypt$…"
    scope = "1001"
    [[web.orgs]]                     # seeds the organisation tree on first start
    code = "1001"
    name = "河南省分行"
    kind = "head"

Nothing here is read by the consumers; it matters to the HTTP API and pages only.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["AdminSeed", "LiveSettings", "MediaSettings", "OrgSeed", "WebSettings"]

CODE = r"^\d{4,16}$"
ROLES = ("admin", "manager", "auditor", "viewer")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AdminSeed(_Model):
    """The first administrator, created when no user exists yet."""

    user: str = Field("admin", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    name: str = "系统管理员"
    password: str | None = Field(None, min_length=8, max_length=128)  # demo only: plain text
    password_hash: str | None = None
    scope: str = Field("1001", pattern=CODE)

    @field_validator("password_hash")
    @classmethod
    def _hash(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("scrypt$") or value.count("$") != 5):
            raise ValueError("expected 'scrypt$n$r$p$salt$hash' "
                             "(make one: python -m controller hash-password)")
        return value


class OrgSeed(_Model):
    """One node of the organisation tree (head office, city branch or sub-branch)."""

    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=60)
    name_en: str = Field("", max_length=120)
    kind: Literal["head", "city", "branch"] = "branch"
    config: str | None = None  # a branch TOML imported as this branch's version 1


class LiveSettings(_Model):
    """The live dashboard's view of the store and its MQTT aggregates."""

    poll_s: float = Field(1.0, ge=0.05, le=60)  # how often the store is asked what changed
    push_s: float = Field(1.0, ge=0.05, le=60)  # a browser gets at most one update per this
    ping_s: float = Field(15.0, ge=0.2, le=300)  # heartbeat on the event stream
    stale_after_s: float = Field(150.0, gt=0)  # a branch not heard from this long: stale
    agg_publish: bool = True  # retained qms/v1/agg/{org} messages
    agg_every_s: float = Field(5.0, ge=0.2, le=3600)  # at most this often per node


class MediaSettings(_Model):
    """Kiosk media quotas at the centre (central/media.py, docs/backoffice.md): what one
    branch is given may not exceed what its box keeps (controller/web/media.py: 40 files,
    100 MB), and the centre's store holds at most ``total_bytes`` of media."""

    branch_files: int = Field(40, ge=1, le=40)
    branch_bytes: int = Field(100_000_000, ge=1, le=100_000_000)
    total_bytes: int = Field(2_000_000_000, ge=1)


class WebSettings(_Model):
    """The whole ``[web]`` section of the centre's config."""

    session_hours: float = Field(12.0, gt=0, le=24 * 14)
    secure_cookies: Literal["auto", "always", "never"] = "auto"
    # Failed logins back off per client address and per account (docs/centre-security.md):
    login_attempts: int = Field(5, ge=1, le=100)  # free failures per address and account
    login_window_s: float = Field(300.0, gt=0, le=86400)  # forgotten this long after a wait
    login_address_first_s: float = Field(30.0, gt=0, le=3600)  # then doubling ...
    login_address_max_s: float = Field(3600.0, gt=0, le=86400)  # ... up to this
    login_account_first_s: float = Field(1.0, gt=0, le=60)  # short, reset by a success
    login_account_max_s: float = Field(60.0, gt=0, le=3600)  # what an attacker can cost
    login_known_days: float = Field(30.0, ge=0, le=366)  # an account's address, exempt
    login_max_rows: int = Field(100_000, ge=100, le=10_000_000)  # back-off rows kept
    metrics_token: str = Field("", max_length=200)  # Bearer token for /metrics scrapers
    admin: AdminSeed = AdminSeed()
    orgs: list[OrgSeed] = []
    live: LiveSettings = LiveSettings()
    media: MediaSettings = MediaSettings()  # [web.media]: kiosk media quotas

    @model_validator(mode="after")
    def _unique(self) -> WebSettings:
        codes = [o.code for o in self.orgs]
        if len(set(codes)) != len(codes):
            raise ValueError("orgs: a code appears twice")
        for kind in ("address", "account"):
            if getattr(self, f"login_{kind}_first_s") > getattr(self, f"login_{kind}_max_s"):
                raise ValueError(f"login_{kind}_first_s is above login_{kind}_max_s")
        if self.metrics_token and not re.match(r"^[A-Za-z0-9_.~+/=-]{16,}$",
                                               self.metrics_token):
            raise ValueError("metrics_token: use at least 16 URL-safe characters")
        return self
