"""Bank IC cards through a PC/SC reader (pyscard): an inserted card's number (SPEC A5, I3).

Any PC/SC reader works (a contact slot or a contactless pad: ACS, Feitian, Gemalto … on
Linux through ``pcscd`` and its CCID driver). The box polls the reader; when a card is in,
:func:`protocols.emv.read_card_number` selects the payment application and reads the
record holding the number, nothing more, and the number goes to the kiosk's card path as
one read (:class:`drivers.card_reader.CardReader`, which checks its Luhn digit, offers it
to the appointment redeemer, issues the ticket). The number is logged only masked.

One card inserted is one read: while it stays in, it is not read again. A card that gives
no number (not a bank card, a mute chip) is handed on as an empty read, shown on the kiosk
as 无法读取卡片,请重新刷卡。, once. pyscard's calls block, so they run in a worker thread;
a reader that disappears raises ``OSError`` (the component reports it offline and the
supervisor retries).

Needs: ``pcscd`` running (Debian: ``pcscd``, ``libccid``), and ``pyscard`` (installed with
the box; built against ``libpcsclite-dev`` where no wheel fits).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from protocols.emv import EmvError, TlvError, read_card_number

__all__ = ["CardSlot", "PcscSource", "PyscardSlot"]

log = logging.getLogger(__name__)

Transmit = Callable[[bytes], bytes]


class CardSlot(Protocol):
    """A reader's slot: the inserted card's transmit function, None while it is empty.
    Both calls may block (they run in a worker thread). ``connect`` raises ``OSError``
    when the reader itself is gone."""

    def connect(self) -> Transmit | None: ...

    def close(self) -> None: ...


class PyscardSlot:
    """A PC/SC reader through pyscard. ``reader``: part of its name (``"ACR39"``); empty:
    the first reader pcscd lists."""

    def __init__(self, reader: str = "") -> None:
        self.reader = reader
        self._connection: Any = None

    def _find(self) -> Any:
        from smartcard.System import readers  # pyscard, imported when used

        try:
            found = [r for r in readers() if self.reader in str(r)]
        except Exception as exc:  # pcscd not running: EstablishContextException
            raise OSError(f"PC/SC is not available: {exc}") from exc
        if not found:
            raise OSError(f"no PC/SC reader named {self.reader!r}")
        return found[0]

    def connect(self) -> Transmit | None:
        from smartcard.Exceptions import CardConnectionException, NoCardException

        self.close()
        connection = self._find().createConnection()
        try:
            connection.connect()
        except (NoCardException, CardConnectionException):
            return None  # no card in, or one that does not answer its reset
        self._connection = connection

        def transmit(apdu: bytes) -> bytes:
            try:
                data, sw1, sw2 = connection.transmit(list(apdu))
            except CardConnectionException as exc:  # pulled out mid-read
                raise EmvError("card_removed", str(exc)) from exc
            return bytes([*data, sw1, sw2])

        return transmit

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.disconnect()
            except Exception:  # already gone with the card
                log.debug("PC/SC disconnect failed", exc_info=True)
            self._connection = None


class PcscSource:
    """A :class:`drivers.card_reader.SwipeSource`: the number of each bank IC card inserted.

    Args:
        slot: the reader (keyword-only backend): :class:`PyscardSlot`, or the simulator's.
        poll_s: seconds between looks into the slot.
    """

    def __init__(self, *, slot: CardSlot, poll_s: float = 0.5) -> None:
        self.slot = slot
        self.poll_s = poll_s
        self.opened = asyncio.Event()
        self.failures: Counter[str] = Counter()  # cards that gave no number, by reason
        self._present = False

    async def lines(self) -> AsyncIterator[str]:
        self.opened.set()
        try:
            while True:
                number = await asyncio.to_thread(self._poll)
                if number is not None:
                    yield number
                await asyncio.sleep(self.poll_s)  # polled: PC/SC has no callback we own
        finally:
            await asyncio.to_thread(self.slot.close)

    def _poll(self) -> str | None:
        """In the worker thread: a newly inserted card's number, "" if it has none."""
        transmit = self.slot.connect()
        if transmit is None:
            self._present = False
            return None
        if self._present:
            return None  # the same card is still in: one read per card
        self._present = True
        try:
            return read_card_number(transmit)
        except EmvError as exc:
            reason = exc.code
        except TlvError:
            reason = "bad_tlv"
        finally:
            self.slot.close()
        self.failures[reason] += 1
        log.warning("IC card reader: card gave no number (%s)", reason)
        return ""  # an empty read: the kiosk shows 无法读取卡片
