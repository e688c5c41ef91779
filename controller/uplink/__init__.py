"""The box's uplink to the centre (MQTT): the journal as outbox, commands, totals.

See docs/uplink.md for the protocol; :mod:`protocols.uplink` holds the topic tree and
schemas shared with the centre.
"""

from .commands import CommandRefused
from .link import Uplink
from .settings import UplinkSettings

__all__ = ["CommandRefused", "Uplink", "UplinkSettings"]
