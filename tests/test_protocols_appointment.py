"""Appointment codes, slots, QR payloads and personal numbers (protocols/appointment.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import appointment as ap
from protocols.cards import id_check_char

TZ = ZoneInfo("Asia/Shanghai")


def an_id(first17: str = "41010519800101231") -> str:
    return first17 + id_check_char(first17)


# --- slots and codes -------------------------------------------------------------------------


def test_slot_one_is_eight_to_nine_and_nine_slots_cover_the_working_day() -> None:
    assert ap.slot(1).label == "08:00-09:00"
    assert ap.slot(3).label == "10:00-11:00"
    assert ap.slot(9).label == "16:00-17:00"
    assert len(ap.SLOTS) == 9
    for bad in (0, 10, -1):
        with pytest.raises(ValueError):
            ap.slot(bad)


def test_a_code_starts_with_its_slot_and_has_five_random_digits() -> None:
    assert ap.make_code(3, lambda n: 7) == "300007"
    assert ap.make_code(9, lambda n: n - 1) == "999999"
    assert ap.slot_of_code("312345").label == "10:00-11:00"
    with pytest.raises(ValueError):
        ap.make_code(0)


def test_codes_come_from_the_csprng_and_spread_over_the_whole_range() -> None:
    codes = {ap.make_code(2) for _ in range(2000)}
    assert all(c[0] == "2" and len(c) == 6 for c in codes)
    assert len(codes) > 1950  # 2000 draws from 100,000: a handful of clashes at most
    assert min(int(c[1:]) for c in codes) < 5000 and max(int(c[1:]) for c in codes) > 95000


@pytest.mark.parametrize("text", ["", "12345", "1234567", "012345", "12a456", "１２３４５６",
                                  "12 456"])
def test_a_malformed_code_is_refused_with_a_clear_message(text: str) -> None:
    with pytest.raises(ap.AppointmentFormatError) as err:
        ap.parse_code(text)
    assert err.value.code == "bad_code" and "6位数字" in err.value.message


@given(st.integers(1, 9), st.integers(0, 99999))
def test_every_code_made_parses_back(slot: int, rnd: int) -> None:
    code = ap.make_code(slot, lambda n: rnd)
    assert ap.parse_code(code) == code
    assert ap.slot_of_code(code).number == slot


@given(st.text(max_size=30))
def test_parse_code_never_crashes(text: str) -> None:
    with contextlib.suppress(ap.AppointmentFormatError):
        ap.parse_code(text)


# --- the redemption window -----------------------------------------------------------------


def test_the_window_is_the_slot_widened_by_the_grace() -> None:
    first, last = ap.redeem_window("2026-11-25", 3, TZ, 600, 900)
    assert dt.datetime.fromtimestamp(first, TZ) == dt.datetime(2026, 11, 25, 9, 50, tzinfo=TZ)
    assert dt.datetime.fromtimestamp(last, TZ) == dt.datetime(2026, 11, 25, 11, 15, tzinfo=TZ)


# --- QR ------------------------------------------------------------------------------------------


def test_the_qr_payload_is_a_link_holding_branch_day_and_code() -> None:
    text = ap.qr_payload("https://q.example.cn/", "1001010001", "2026-11-25", "312345")
    assert text == "https://q.example.cn/yy/1001010001/20261125/312345"
    assert ap.parse_qr(text) == ap.QrAppointment("1001010001", "2026-11-25", "312345")
    assert ap.parse_qr("yy/1001010001/20261125/312345").code == "312345"  # no base: fine


@pytest.mark.parametrize("text", ["", "312345", "https://x/yy/1001010001/20261325/312345",
                                  "https://x/yy/10/20261125/312345",
                                  "https://x/yy/1001010001/20261125/012345",
                                  "https://x/t/20261125-A001"])
def test_a_qr_that_is_no_appointment_is_refused(text: str) -> None:
    with pytest.raises(ap.AppointmentFormatError):
        ap.parse_qr(text)


@given(st.text(max_size=80))
def test_parse_qr_never_crashes(text: str) -> None:
    with contextlib.suppress(ap.AppointmentFormatError):
        ap.parse_qr(text)


# --- personal numbers ------------------------------------------------------------------------


def test_id_numbers_are_checked_with_the_gb11643_check_character() -> None:
    good = an_id()
    parsed = ap.parse_id(good.lower())
    assert parsed.number == good and parsed.region == "410105" and parsed.male
    wrong = good[:17] + ("0" if good[17] != "0" else "1")
    for bad in (wrong, good[:17], "41010519801301231X", "hello"):
        with pytest.raises(ap.AppointmentFormatError) as err:
            ap.parse_id(bad)
        assert err.value.code == "bad_id_number"


@pytest.mark.parametrize("text,phone", [("13812345678", "13812345678"),
                                        ("+86 138-1234-5678", "13812345678"),
                                        ("008619912345678", "19912345678")])
def test_mobile_numbers_are_normalised(text: str, phone: str) -> None:
    assert ap.parse_phone(text) == phone


@pytest.mark.parametrize("text", ["12812345678", "1381234567", "138123456789", "", "电话"])
def test_a_bad_mobile_number_is_refused(text: str) -> None:
    with pytest.raises(ap.AppointmentFormatError):
        ap.parse_phone(text)


def test_masks_keep_only_the_ends() -> None:
    assert ap.mask_number(an_id()) == "4101**********" + an_id()[-4:]
    assert ap.mask_phone("13812345678") == "138****5678"
    assert ap.mask_number("1234") == "****"


def test_digests_agree_for_the_same_key_and_differ_by_branch_and_day() -> None:
    master = b"m" * 32
    k1 = ap.branch_day_key(master, "1001010001", "2026-11-25")
    k2 = ap.branch_day_key(master, "1001010002", "2026-11-25")
    k3 = ap.branch_day_key(master, "1001010001", "2026-11-26")
    number = an_id()
    assert ap.digest(k1, number) == ap.digest(k1, number.lower() + " ")
    assert len({ap.digest(k, number) for k in (k1, k2, k3, master)}) == 4
    assert number not in ap.digest(k1, number)


def test_wait_estimate_shares_the_work_between_open_windows() -> None:
    assert ap.wait_minutes(3, 3, 1) == 9
    assert ap.wait_minutes(3, 4, 2) == 6
    assert ap.wait_minutes(0, 4, 0) == 0
    assert ap.wait_minutes(5, 5, 0) == 25  # nobody serving now: as if one window


# --- day lists (cmd/appointments) ------------------------------------------------------------

KEY = bytes(range(32))
TODAY_LIST = "2026-11-25"
codes = st.builds(lambda s, r: f"{s}{r:05d}", st.integers(1, 9), st.integers(0, 99_999))
listed = st.builds(
    lambda i, code, q, d, who: ap.ListedBooking(f"b{i}", code, q, int(code[0]), "booked", d,
                                                None, *who),
    st.integers(0, 10 ** 6), codes, st.sampled_from(["A", "B", "V"]),
    st.none() | st.text("0123456789abcdef", min_size=32, max_size=32),
    st.just((None, 0)) | st.tuples(st.sampled_from(["vip", "corporate", "normal"]),
                                   st.integers(0, 7)))


def unique(items: list[ap.ListedBooking]) -> tuple[ap.ListedBooking, ...]:
    ids, codes_seen, out = set(), set(), []
    for b in items:
        if b.id not in ids and b.code not in codes_seen:
            ids.add(b.id)
            codes_seen.add(b.code)
            out.append(b)
    return tuple(out)


@given(st.lists(listed, max_size=30), st.integers(1, 10 ** 6), st.none() | st.integers(1, 99),
       st.lists(st.from_regex(r"\Ab[0-9]{1,6}\Z"), max_size=5))
def test_a_day_list_round_trips_full_or_delta(items: list[ap.ListedBooking], revision: int,
                                              base: int | None, removed: list[str]) -> None:
    lst = ap.DayList(TODAY_LIST, revision + 100, KEY, unique(items), 1800.0, 900.0, base,
                     tuple(removed) if base is not None else ())
    assert ap.parse_day_list(ap.day_list(lst)) == lst
    assert ap.parse_day_list(ap.day_list(lst)).delta == (base is not None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)
GOOD = ap.day_list(ap.DayList(TODAY_LIST, 3, KEY, (ap.ListedBooking("b1", "312345", "A", 3),),
                              base=2, removed=("b2",)))


@given(st.dictionaries(st.sampled_from([*sorted(GOOD), "x"]), json_values, max_size=10))
def test_the_day_list_parser_refuses_anything_else_with_its_own_error(junk: dict) -> None:
    """Whatever the message holds, the box gets a DayList or a DayListError (which it
    answers ``bad_bookings``): never a KeyError or TypeError from deep inside."""
    for msg in (junk, {**GOOD, **junk}):
        with contextlib.suppress(ap.DayListError):
            ap.parse_day_list(msg)


@given(json_values)
def test_a_listed_customer_is_taken_or_refused_never_a_crash(value: object) -> None:
    """The centre's word on who the customer is (``customer``), whatever it holds."""
    msg = {**GOOD, "bookings": [{**GOOD["bookings"][0], "customer": value}]}
    try:
        b = ap.parse_day_list(msg).bookings[0]
    except ap.DayListError as exc:
        assert exc.where.startswith("bookings.0.customer")
    else:
        assert value is None or (b.customer_type is not None and 0 <= b.stars <= 7)


@given(st.integers(0, len(GOOD["bookings"][0]) - 1), json_values)
def test_one_bad_field_of_a_booking_is_named(index: int, value: object) -> None:
    name = sorted(GOOD["bookings"][0])[index]
    msg = {**GOOD, "bookings": [{**GOOD["bookings"][0], name: value}]}
    try:
        ap.parse_day_list(msg)
    except ap.DayListError as exc:
        assert exc.where.startswith("bookings")


@pytest.mark.parametrize("change,where", [
    ({"base": 3}, "base"),  # not below the revision
    ({"base": None, "removed": ["b2"]}, "removed"),  # only a delta removes
    ({"removed": ["../x"]}, "removed.0"),
    ({"key": "00"}, "key"),
    ({"day": "2026-02-30"}, "day"),
    ({"revision": 0}, "revision"),
    ({"bookings": [GOOD["bookings"][0], GOOD["bookings"][0]]}, "bookings"),
    ({"bookings": [{**GOOD["bookings"][0], "slot": 4}]}, "bookings.0.slot"),
    ({"bookings": [{**GOOD["bookings"][0], "code": "３12345"}]}, "bookings.0.code"),
    ({"early_s": 1e9}, "early_s"),
    ({"bookings": [{**GOOD["bookings"][0], "customer": "vip"}]}, "bookings.0.customer"),
    ({"bookings": [{**GOOD["bookings"][0], "customer": {"type": "VIP"}}]},
     "bookings.0.customer.type"),
    ({"bookings": [{**GOOD["bookings"][0], "customer": {"type": "vip", "stars": 8}}]},
     "bookings.0.customer.stars"),
    ({"bookings": [{**GOOD["bookings"][0], "customer": {"type": "vip", "stars": True}}]},
     "bookings.0.customer.stars"),
])
def test_day_list_refusals_name_the_field(change: dict, where: str) -> None:
    with pytest.raises(ap.DayListError) as err:
        ap.parse_day_list({**GOOD, **change})
    assert err.value.where == where
