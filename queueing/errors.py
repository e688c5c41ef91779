"""Errors of the discrete-event simulator. One root, :class:`SimError`."""

from __future__ import annotations

__all__ = ["ScenarioError", "SimError"]


class SimError(Exception):
    """Root of every error the simulator raises on purpose."""


class ScenarioError(SimError, ValueError):
    """A scenario value is wrong. ``key`` names it, dotted (``service.A.mean_minutes``)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key, self.problem = key, problem
        super().__init__(f"{key}: {problem}")

    def __reduce__(self) -> tuple[object, ...]:
        # Pickled by its fields, so that it crosses process boundaries (queueing.batch).
        return type(self), (self.key, self.problem)
