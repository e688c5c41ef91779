"""Errors of the centre. One root, :class:`CentreError`; leaves also inherit a built-in."""

from __future__ import annotations

__all__ = ["CentreConfigError", "CentreError", "StoreError"]


class CentreError(Exception):
    """Root of every error the centre raises on purpose."""


class CentreConfigError(CentreError, ValueError):
    """A centre configuration value is wrong; ``key`` names it (``store.url``)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key, self.problem = key, problem
        super().__init__(f"{key}: {problem}")


class StoreError(CentreError, OSError):
    """The store could not be opened, migrated or written."""
