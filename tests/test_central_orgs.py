"""The organisation tree (G1): codes as prefixes, parents found, boxes attached by code."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central import orgs as tree
from central.orgs import OrgError, add_org, delete_org, in_scope, list_orgs, update_org
from central.settings import OrgSeed
from central.store import open_store

from .uplink_support import pg_url_fixture, store_url_fixture

__all__ = ["pg_url_fixture", "store_url_fixture"]


def test_a_node_and_its_subtree_are_the_codes_that_start_with_it() -> None:
    assert in_scope("1001", "1001") and in_scope("1001", "1001010001")
    assert in_scope("100101", "1001010001") and not in_scope("100102", "1001010001")
    assert not in_scope("1001010001", "1001")


def test_parents_are_found_by_prefix_whatever_the_order_of_adding(store_url: str) -> None:
    store = open_store(store_url)
    try:
        add_org(store, "1001010001", "金水路支行", "branch")  # before its city and province
        add_org(store, "1001", "河南省分行", "head")
        add_org(store, "100101", "郑州分行", "city")
        tree = {o.code: o.parent for o in list_orgs(store)}
        assert tree == {"1001": None, "100101": "1001", "1001010001": "100101"}
        with pytest.raises(OrgError) as below_branch:
            add_org(store, "100101000199", "x", "branch")
        assert below_branch.value.code == "under_branch"
        with pytest.raises(OrgError) as twice:
            add_org(store, "100101", "again", "city")
        assert twice.value.code == "exists"
        with pytest.raises(OrgError) as busy:
            delete_org(store, "100101")
        assert busy.value.code == "has_children"
        with pytest.raises(OrgError) as leaf:
            update_org(store, "100101", "郑州分行", kind="branch")
        assert leaf.value.code == "has_children"
        assert update_org(store, "100101", "郑州市分行", "Zhengzhou").name == "郑州市分行"
        delete_org(store, "1001010001")
        assert [o.code for o in list_orgs(store)] == ["1001", "100101"]
    finally:
        store.close()


def test_a_reporting_box_not_in_the_tree_shows_under_its_longest_prefix(store_url: str
                                                                        ) -> None:
    store = open_store(store_url)
    try:
        add_org(store, "1001", "河南省分行", "head")
        add_org(store, "100102", "洛阳分行", "city")
        orgs = {o.code: o for o in list_orgs(store, ["1001029999", "2002010001"])}
        stray = orgs["1001029999"]
        assert stray.parent == "100102" and stray.registered is False
        assert orgs["2002010001"].parent is None  # another province: a root of its own
    finally:
        store.close()


def test_the_demo_seed_builds_the_province(store_url: str) -> None:
    from central.config import load_centre_config
    from central.orgs import seed_orgs

    from .office_support import CENTRE_TOML

    seeds: list[OrgSeed] = load_centre_config(CENTRE_TOML).web.orgs
    store = open_store(store_url)
    try:
        assert seed_orgs(store, seeds) == 10
        assert seed_orgs(store, seeds) == 0  # once
        orgs = list_orgs(store)
    finally:
        store.close()
    branches = [o for o in orgs if o.kind == "branch"]
    assert len(branches) == 7 and {o.parent for o in branches} == {"100101", "100102"}
    assert "1001010001" in {o.code for o in branches}  # the example box


# --- pages of the tree: what the dashboard, the pickers and the name maps load -------------


@pytest.fixture(name="province")
def province_fixture(store_url: str) -> Iterator[Any]:
    """A store holding :func:`_province`, closed afterwards."""
    store = open_store(store_url)
    try:
        _province(store)
        yield store
    finally:
        store.close()


def _province(store: Any) -> None:
    """The demo's shape: 1001 → 100101 (two branches), 100102 (one), and a box that
    reports as 1001029999 before anyone added it."""
    add_org(store, "1001", "河南省分行", "head", "Henan")
    add_org(store, "100101", "郑州分行", "city", "Zhengzhou")
    add_org(store, "1001010001", "郑州金水路支行", "branch", "Jinshui Road")
    add_org(store, "1001010002", "郑州花园路支行", "branch", "Huayuan Road")
    add_org(store, "100102", "洛阳分行", "city", "Luoyang")
    add_org(store, "1001020001", "洛阳中州路支行", "branch", "Zhongzhou Road")
    add_org(store, "2002", "另一省分行", "head")
    for code in ("1001029999", "1001010001"):
        store.execute("INSERT INTO branches (branch, first_seen) VALUES (?, 0)", (code,))


def _codes(page: Any) -> list[str]:
    return [n["code"] for n in page.to_json()["orgs"]]


def _walk(fetch: Callable[[str | None], Any]) -> list[list[str]]:
    """The codes of each page, following ``next`` while there is ``more``."""
    pages, after = [], None
    while True:
        page = fetch(after).to_json()
        pages.append([n["code"] for n in page["orgs"]])
        if not page["more"]:
            return pages
        after = page["next"]


def test_a_node_lists_the_nodes_just_below_it_with_their_branch_counts(province: Any) -> None:
    roots = tree.children(province, "1001", None, None, 200).to_json()["orgs"]
    assert [(n["code"], n["has_children"], n["branches"]) for n in roots] == [
        ("1001", True, 4)]  # three in the tree and the stray box
    cities = tree.children(province, "1001", "1001", None, 200).to_json()["orgs"]
    assert [(n["code"], n["branches"]) for n in cities] == [("100101", 2), ("100102", 2)]
    luoyang = tree.children(province, "1001", "100102", None, 200).to_json()["orgs"]
    assert [(n["code"], n["registered"], n["has_children"]) for n in luoyang] == [
        ("1001020001", True, False), ("1001029999", False, False)]
    assert _codes(tree.children(province, "100101", None, None, 200)) == ["100101"]  # its root
    assert _codes(tree.children(province, "10", None, None, 200)) == ["1001"]  # not 2002


def test_long_lists_come_in_pages_that_join_up_in_code_order(province: Any) -> None:
    for n in range(3, 8):
        add_org(province, f"100102000{n}", f"洛阳{n}号支行", "branch")
    seen = _walk(lambda after: tree.children(province, "1001", "100102", after, 2))
    codes = [c for page in seen for c in page]
    assert codes == sorted(codes) and "1001029999" in codes
    assert [len(p) for p in seen] == [2, 2, 2, 1]
    whole = [c for page in _walk(lambda after: tree.orgs_page(province, "1001", after, 3))
             for c in page]
    everything = [o.code for o in list_orgs(province, ["1001029999"]) if o.code < "2"]
    assert whole == everything


def test_a_picker_finds_a_node_by_its_first_digits_or_part_of_its_name(province: Any) -> None:
    assert _codes(tree.search_orgs(province, "1001", "100102", None, 50)) == [
        "100102", "1001020001", "1001029999"]
    assert _codes(tree.search_orgs(province, "1001", "金水", None, 50)) == ["1001010001"]
    assert _codes(tree.search_orgs(province, "1001", "huayuan", None, 50)) == ["1001010002"]
    assert _codes(tree.search_orgs(province, "1001", "洛阳", "city", 50)) == ["100102"]
    assert _codes(tree.search_orgs(province, "100101", "洛阳", None, 50)) == []  # not its scope
    assert _codes(tree.search_orgs(province, "1001", "另一", None, 50)) == []
    first = tree.search_orgs(province, "1001", "", "branch", 2).to_json()
    assert [n["code"] for n in first["orgs"]] == ["1001010001", "1001010002"]
    assert first["more"] is True


def test_names_are_given_for_the_codes_asked_within_the_scope_only(province: Any) -> None:
    found = tree.org_names(province, "100102", ["1001020001", "1001010001", "1001029999",
                                            "2002", "1001020077"])
    assert [(o.code, o.name) for o in found] == [
        ("1001020001", "洛阳中州路支行"), ("1001029999", "未登记网点 1001029999")]


@given(st.text(max_size=60))
def test_a_search_text_is_refused_or_holds_no_wildcard(text: str) -> None:
    try:
        q = tree.search_text(text)
    except OrgError as exc:
        assert exc.code == "bad_query"
        return
    assert len(q) <= 40 and not {"%", "_", "\\", "'"} & set(q)


@given(st.lists(st.text(alphabet="0123456789,x", max_size=18), max_size=600))
def test_a_code_list_is_refused_or_holds_only_codes_each_once(parts: list[str]) -> None:
    try:
        codes = tree.code_list(",".join(parts))
    except OrgError as exc:
        assert exc.code == "bad_query"
        return
    assert 1 <= len(codes) <= tree.NAMES_MAX and len(set(codes)) == len(codes)
    assert all(c.isdigit() and 4 <= len(c) <= 16 for c in codes)


@pytest.mark.parametrize("text", ["0", "1001", "-1", "1e3", "abc", "٣"])
def test_a_page_size_outside_one_to_the_most_is_refused(text: str) -> None:
    with pytest.raises(OrgError):
        tree.page_size(text, 200, 1000)


def test_a_page_size_within_bounds_is_taken() -> None:
    assert tree.page_size(None, 200, 1000) == 200
    assert tree.page_size("1000", 200, 1000) == 1000 and tree.page_size("1", 200, 1000) == 1
