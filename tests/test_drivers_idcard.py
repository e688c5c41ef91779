"""The 二代证 reader driver against its twin on a pty: a card placed gives the kiosk's
card path the ID number; a misread, a bad frame or a silent reader are handled."""

from __future__ import annotations

import asyncio
import logging

import pytest

from controller.box import Box
from drivers.card_reader import CardReader
from drivers.idcard import IdCardSource
from protocols.cards import CardRead
from protocols.idcard import FIND_CARD, READ_BASE_INFO
from sim.idcard import SimIdReader, SimIdSource, sample_card
from tests.card_reader_support import PaperPrinter, next_outcome, running

VIP_ID = "410105198001012311"  # 陈先生 in the test config's VIP table


async def test_card_placed_issues_one_vip_ticket_and_logs_no_number(
        box: Box, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    box.printer = printer = PaperPrinter()
    async with SimIdReader() as twin:
        source = IdCardSource(twin.port, poll_s=0.05)
        async with running(box, source, name="id") as (reader, outcomes):
            twin.place(sample_card(VIP_ID))
            out = await next_outcome(outcomes)
            # the card stays on the reader for a while: still one ticket
            polls = twin.commands[FIND_CARD]
            while twin.commands[FIND_CARD] < polls + 3:
                await asyncio.sleep(0.05)  # a few more polls of the reader
            assert outcomes.empty()
    assert out.ok and out.card == CardRead("id_card", VIP_ID)
    assert out.ticket is not None and out.ticket["stars"] == 5
    assert [t["number"] for t in printer.printed] == [out.ticket["number"]]
    assert twin.commands[READ_BASE_INFO] == 1
    assert VIP_ID not in caplog.text and "陈明" not in caplog.text
    assert reader.rejections == {}


async def test_card_taken_away_and_placed_again_is_read_again(box: Box) -> None:
    async with SimIdReader() as twin:
        source = IdCardSource(twin.port, poll_s=0.05)
        async with running(box, source) as (_, outcomes):
            twin.place(VIP_ID)
            first = await next_outcome(outcomes)
            twin.remove()
            polls = twin.commands[FIND_CARD]
            while twin.commands[FIND_CARD] < polls + 2:
                await asyncio.sleep(0.05)  # the reader has seen the card gone
            twin.place(VIP_ID)
            second = await next_outcome(outcomes)
    assert first.ok and second.ok
    assert first.ticket is not None and second.ticket is not None
    assert first.ticket["number"] != second.ticket["number"]


async def test_failed_read_is_shown_unreadable_once(box: Box) -> None:
    async with SimIdReader() as twin:
        source = IdCardSource(twin.port, poll_s=0.05)
        async with running(box, source) as (_, outcomes):
            twin.fail_reads = 1
            twin.place(VIP_ID)
            out = await next_outcome(outcomes)
    assert not out.ok and out.code == "bad_format"
    assert out.message == "无法读取卡片,请重新刷卡。"
    assert source.failures == {"card read failed": 1}
    assert box.engine.state.tickets == {}


async def test_corrupted_response_is_dropped_and_the_card_still_read(box: Box) -> None:
    async with SimIdReader() as twin:
        source = IdCardSource(twin.port, poll_s=0.05, timeout_s=0.3)
        async with running(box, source) as (_, outcomes):
            await asyncio.wait_for(source.opened.wait(), 5)
            twin.corrupt_next = True
            twin.place(VIP_ID)
            out = await next_outcome(outcomes)
    assert out.ok
    assert source.frames is not None and source.frames.errors["bad checksum"] >= 1


async def test_silent_reader_reported_offline(box: Box) -> None:
    async with SimIdReader() as twin:
        twin.silent = True
        source = IdCardSource(twin.port, poll_s=0.01, timeout_s=0.1, offline_after=2)
        with pytest.raises(OSError, match="does not answer"):
            await asyncio.wait_for(CardReader(source=source, name="id").run(box), 5)
    assert box.health.devices["card_reader.id"].state == "offline"


async def test_simulated_source_with_its_pipe(box: Box, tmp_path: object) -> None:
    from pathlib import Path

    fifo = Path(str(tmp_path)) / "sim" / "cards" / "id"
    source = SimIdSource(fifo=fifo)
    async with running(box, source) as (_, outcomes):
        await asyncio.wait_for(source.opened.wait(), 5)
        with open(fifo, "w") as pipe:  # as `echo … > data/sim/cards/id` does
            pipe.write(VIP_ID + "\n")
        out = await next_outcome(outcomes)
    assert out.ok and out.card == CardRead("id_card", VIP_ID)
