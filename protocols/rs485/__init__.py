"""RS485 codecs shared by the box, the simulator and (MicroPython) nodes.

- :mod:`.legacy68`: the 68-frame profile of installed Chinese caller keypads and displays.
- :mod:`.modbus`: Modbus RTU and the register maps of open nodes.
- :mod:`.keys`: keypad key codes and what a key report means (both profiles).

Pure: bytes and ``struct`` only, no I/O, no asyncio. See docs/rs485.md.
"""

from __future__ import annotations

from .errors import FrameError, KeySequenceError, Rs485Error

__all__ = ["FrameError", "KeySequenceError", "Rs485Error"]
