"""The organisation tree (G1): codes as prefixes, parents found, boxes attached by code."""

from __future__ import annotations

import pytest

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
