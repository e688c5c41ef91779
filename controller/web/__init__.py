"""The box's local web: the HTTP JSON API now; kiosk, soft caller and displays later."""

from .app import create_app

__all__ = ["create_app"]
