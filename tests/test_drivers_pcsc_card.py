"""Bank IC cards at the kiosk: the PC/SC source reads the number and the card path issues
the ticket; against the real PC/SC stack (pcscd + vpcd + pyscard) with the virtual card."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.box import Box
from drivers.pcsc_card import PcscSource, PyscardSlot
from protocols.cards import CardRead
from sim.emv_card import EmvCard, SimPcscSlot, VpcdCard
from tests.card_reader_support import PaperPrinter, next_outcome, running
from tests.pcsc_support import Pcscd, start_pcscd

VIP_CARD = "6225880137001237"  # 陈先生's bank card in the test config


async def test_ic_card_inserted_issues_one_vip_ticket(box: Box,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    box.printer = printer = PaperPrinter()
    slot = SimPcscSlot()
    source = PcscSource(slot=slot, poll_s=0.02)
    async with running(box, source, name="ic") as (reader, outcomes):
        card = EmvCard(VIP_CARD)
        slot.insert(card)
        out = await next_outcome(outcomes)
        reads, polls = len(card.apdus), slot.polls
        while slot.polls < polls + 3:
            await asyncio.sleep(0.02)  # the card stays in for a few polls: no second ticket
        assert outcomes.empty() and len(card.apdus) == reads
    assert out.ok and out.card == CardRead("ic", VIP_CARD, "2812")
    assert out.ticket is not None and out.ticket["stars"] == 5
    assert [t["number"] for t in printer.printed] == [out.ticket["number"]]
    assert VIP_CARD not in caplog.text
    assert reader.rejections == {}


async def test_card_without_a_bank_application_is_unreadable(box: Box) -> None:
    slot = SimPcscSlot()
    source = PcscSource(slot=slot, poll_s=0.02)
    async with running(box, source) as (_, outcomes):
        slot.insert(EmvCard(VIP_CARD, aid=bytes.fromhex("A000000999999999"), ppse=False))
        out = await next_outcome(outcomes)
    assert not out.ok and out.message == "无法读取卡片,请重新刷卡。"
    assert source.failures == {"no_application": 1}
    assert box.engine.state.tickets == {}


async def test_simulated_slot_takes_cards_from_its_pipe(box: Box, tmp_path: Path) -> None:
    fifo = tmp_path / "sim" / "cards" / "ic"
    slot = SimPcscSlot(fifo)
    source = PcscSource(slot=slot, poll_s=0.02)
    async with running(box, source) as (_, outcomes):
        while not fifo.exists():
            await asyncio.sleep(0.02)  # the slot makes its pipe on the first poll
        with open(fifo, "w") as pipe:  # as `echo … > data/sim/cards/ic` does
            pipe.write(VIP_CARD + "\n")
        out = await next_outcome(outcomes)
    assert out.ok and out.card is not None and out.card.number == VIP_CARD


@pytest.fixture(scope="module")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pcscd]:
    # one daemon for the module: libpcsclite keeps the first socket path it was given
    with pytest.MonkeyPatch.context() as env:
        for daemon in start_pcscd(tmp_path_factory.mktemp("pcscd")):
            env.setenv("PCSCLITE_CSOCK_NAME", str(daemon.socket_path))
            yield daemon


async def test_real_pcsc_stack_reads_the_virtual_card(box: Box, pcscd: Pcscd) -> None:
    """pyscard → libpcsclite → pcscd → vpcd → the virtual PBOC card, T=0 style answers."""
    card = EmvCard(VIP_CARD, t0=True)
    slot = PyscardSlot("Virtual PCD")
    source = PcscSource(slot=slot, poll_s=0.05)
    async with running(box, source, name="ic") as (_, outcomes):
        with VpcdCard(card, pcscd.port) as inserted:
            out = await asyncio.wait_for(outcomes.get(), 20)
        assert 0x04 in inserted.controls  # the reader asked the card for its ATR
    assert out.ok and out.card == CardRead("ic", VIP_CARD, "2812")
    assert [a[:2].hex() for a in card.apdus].count("00b2") == 1  # one record read


def test_reader_named_but_absent_is_an_os_error(pcscd: Pcscd) -> None:
    with pytest.raises(OSError, match="no PC/SC reader"):
        PyscardSlot("No Such Reader").connect()
    assert PyscardSlot("Virtual PCD").connect() is None  # the reader is there, no card in
