"""The example forms, shared by the box's and the centre's form tests."""

from __future__ import annotations

from pathlib import Path

from protocols.forms import FormSettings

ROOT = Path(__file__).resolve().parent.parent


def centre_forms() -> FormSettings:
    """The ``[forms]`` of examples/centre.toml (the phone page's forms)."""
    from central.config import load_centre_config

    return load_centre_config(ROOT / "examples" / "centre.toml").form_settings


TRANSFER = {"account": "6225 8801 2345 1237", "payee": "李四", "payee_account":
            "6217000012345678", "amount": "1,200.5", "purpose": "房租"}
