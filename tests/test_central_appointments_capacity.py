"""A slot's capacity holds under 50 bookings at once, on a real database (SQLite, PostgreSQL):
each booking is its own connection and transaction, all started together."""

from __future__ import annotations

import asyncio
from pathlib import Path

from central.appointments import Appointments, Customer, CustomerRefused
from central.config import load_centre_config
from central.service import Centre
from central.store import open_store
from common.clock import ManualClock
from tests.customer_support import an_id, put_catalogue
from tests.uplink_support import BRANCH, pg_url_fixture, store_url_fixture  # noqa: F401

DAY, SLOT, CAPACITY, CROWD = "2026-11-25", 4, 10, 50


def centre_for(store_url: str, tmp_path: Path) -> Centre:
    cfg = load_centre_config(None, [f"store.url={store_url}", "http.enabled=false",
                                    f"customers.secret_file={tmp_path / 'key'}",
                                    f"customers.capacity={CAPACITY}", f"customers.pool={CROWD}",
                                    f"customers.max_active={CROWD}"])
    return Centre(cfg)


async def crowd(a: Appointments, clock: ManualClock) -> list[Customer]:
    await put_catalogue(a, clock)
    people = []
    for i in range(CROWD):
        phone = f"1390000{i:04d}"
        who = Customer(a.vault.digest(phone), phone, None, None)
        profile = await a.register(who, f"客户{i}", None, an_id(i))
        people.append(Customer(who.phone_digest, phone, profile["id"], profile["name"]))
    return people


async def test_fifty_bookings_at_once_never_exceed_the_slot(store_url: str, tmp_path: Path,
                                                            clock: ManualClock) -> None:
    centre = centre_for(store_url, tmp_path)
    assert centre.customers is not None
    a = centre.customers.appointments
    a.clock = clock.now
    try:
        people = await crowd(a, clock)
        results = await asyncio.gather(*(a.book(p, BRANCH, "A", DAY, SLOT) for p in people),
                                       return_exceptions=True)
        booked = [r for r in results if isinstance(r, dict)]
        full = [r for r in results if isinstance(r, CustomerRefused)]
        assert len(booked) == CAPACITY and len(full) == CROWD - CAPACITY, results[:3]
        assert {r.code for r in full} == {"slot_full"}
        assert len({b["code"] for b in booked}) == CAPACITY
        assert all(b["code"][0] == str(SLOT) for b in booked)

        # Cancellations and new bookings racing each other: never above capacity either.
        holders = [(p, r) for p, r in zip(people, results, strict=True) if isinstance(r, dict)]
        others = [p for p, r in zip(people, results, strict=True) if not isinstance(r, dict)]
        raced = await asyncio.gather(*(a.cancel(p, b["id"]) for p, b in holders[:5]),
                                     *(a.book(p, BRANCH, "A", DAY, SLOT) for p in others[:20]),
                                     return_exceptions=True)
        assert all(isinstance(r, dict) and r["state"] == "cancelled" for r in raced[:5])
        newly = [r for r in raced[5:] if isinstance(r, dict)]
        assert {r.code for r in raced[5:] if not isinstance(r, dict)} <= {"slot_full"}
        assert len(newly) <= 5
    finally:
        await a.pool.close()
    st = open_store(store_url)
    try:
        held = st.execute("SELECT count(*) FROM bookings WHERE branch = ? AND day = ? AND "
                          "slot = ? AND state = 'booked'", (BRANCH, DAY, SLOT)).fetchone()[0]
        counted = st.execute("SELECT booked FROM slot_counts WHERE branch = ? AND day = ? AND "
                             "queue = 'A' AND slot = ?", (BRANCH, DAY, SLOT)).fetchone()[0]
    finally:
        st.close()
    assert held == counted == CAPACITY - 5 + len(newly) <= CAPACITY

