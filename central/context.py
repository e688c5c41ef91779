"""What the centre's routers and services need of their process: a narrow interface.

:class:`~central.service.Centre` builds the centre's parts (consumers, office, customer
channels, the HTTP app) and so imports them; a part that types its argument as ``Centre``
imports it back, and the whole centre becomes one import circle. A part asks instead for
:class:`CentreContext`: the configuration, reads on the store's reading connection, and
commands to a branch. ``Centre`` satisfies it as it is (structural typing), and a test can
hand in any object that does.

Parts that need more of the process (the office's live board, the customer channels) are
handed those objects themselves, not the whole centre. The one part that publishes on the
broker itself (the live board's aggregates) asks for :class:`PublishingContext`.

Only the composition root (``central/service.py``, ``central/__main__.py``), the app
factory (``central/web.py``) and the dependencies (``central/deps.py``) name ``Centre``
(``tests/test_central_layers.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from .config import CentreConfig
    from .mqtt import MqttClient
    from .store import Store

__all__ = ["CentreContext", "PublishingContext"]

T = TypeVar("T")


class CentreContext(Protocol):
    """The centre process as one of its routers or services sees it."""

    @property
    def config(self) -> CentreConfig:
        """The centre's validated configuration."""
        ...

    async def read(self, fn: Callable[[Store], T]) -> T:
        """Run ``fn(store)`` on the reading connection's thread; returns its answer."""
        ...

    async def send_command(self, branch: str, name: str, args: dict[str, Any]) -> str:
        """Publish command ``name`` to ``branch``; returns its id. ValueError if invalid."""
        ...


class PublishingContext(CentreContext, Protocol):
    """A :class:`CentreContext` that also lends its broker connection (the office's live
    board publishes the organisations' aggregates on it)."""

    def mqtt_client(self) -> MqttClient | None:
        """A connected client of this process's consumers, or None while none is."""
        ...
