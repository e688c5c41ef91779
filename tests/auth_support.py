"""The centre's routes and the permission each needs: shared by the auth and scope tests."""

from __future__ import annotations

from typing import Any


def _routes(routes: list[Any], inherited: tuple[Any, ...] = ()
            ) -> list[tuple[Any, tuple[Any, ...]]]:
    """Every route with the dependencies its includes add (FastAPI keeps included routers
    nested, their dependencies in the include's context)."""
    out = []
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is None:
            out.append((r, inherited))
        else:
            extra = tuple(getattr(r.include_context, "dependencies", ()) or ())
            out += _routes(inner.routes, inherited + extra)
    return out
