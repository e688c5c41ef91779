"""The centre's one clock (issue 17): ``clock.start`` (demos) is read once, built once by
the Centre and handed to what stamps and compares; ``customers.clock_start`` is its old
name."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from central.config import load_centre_config
from central.errors import CentreConfigError
from central.service import Centre

TEN = "2026-11-25T10:00:00+08:00"


def test_clock_start_needs_a_zone_and_defaults_to_the_real_time() -> None:
    assert load_centre_config(None, []).clock.start is None
    assert load_centre_config(None, [f"clock.start={TEN}"]).clock.start == \
        dt.datetime.fromisoformat(TEN)
    with pytest.raises(CentreConfigError, match="time zone"):
        load_centre_config(None, ["clock.start=2026-11-25T10:00:00"])


def test_the_old_customers_clock_start_is_read_as_clock_start() -> None:
    old = load_centre_config(None, [f"customers.clock_start={TEN}"])
    assert old.clock.start == dt.datetime.fromisoformat(TEN)
    both = load_centre_config(None, [f"customers.clock_start={TEN}", f"clock.start={TEN}"])
    assert both.clock.start == dt.datetime.fromisoformat(TEN)
    with pytest.raises(CentreConfigError, match="differs"):
        load_centre_config(None, [f"customers.clock_start={TEN}",
                                  "clock.start=2026-11-26T10:00:00+08:00"])


def test_the_centre_builds_its_clock_once_and_hands_the_same_one_down(tmp_path: Path) -> None:
    config = load_centre_config(None, [f"clock.start={TEN}",
                                       f"store.url=sqlite:///{tmp_path / 'c.sqlite3'}",
                                       f"customers.secret_file={tmp_path / 'k'}"])
    centre = Centre(config)
    try:
        t0 = dt.datetime.fromisoformat(TEN).timestamp()
        assert t0 <= centre.clock.now() < t0 + 60
        assert centre.office.board.clock is centre.clock
        assert all(c.clock is centre.clock for c in centre.consumers)
        assert centre.customers is not None
        assert centre.customers.appointments.clock == centre.clock.now
        pool = centre.customers.appointments.pool  # what the customer channels' stores stamp
        assert pool.clock is not None and t0 <= pool.clock.now() < t0 + 60
        assert centre.leases.clock is not centre.clock  # leases: the real time, between hosts
    finally:
        asyncio.run(centre.close())
