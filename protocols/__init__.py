"""Pure code shared by the box, the centre and the simulator.

Codecs, schemas and message tables only: nothing here does I/O or imports asyncio,
so a MicroPython node could reuse the RS485 codecs.
"""
