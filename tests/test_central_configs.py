"""Branch configurations at the centre (G2, G3): sections edited as TOML and validated by
the box's own rules, versions kept, a version pushed to a real box core and confirmed by
its reply, the running version shown; pause and resume with a reason; the audit log."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from central.broker import LocalBroker
from central.store import open_store
from controller.box import Box
from controller.engine import commands as c
from controller.errors import Refused

from .office_support import B1, B2, add_user, http_client, login, office_running
from .uplink_support import (
    box_b_button,
    broker_fixture,
    held_line,
    pg_url_fixture,
    running,
    store_url_fixture,
    uplink_for,
    wait_for,
    without_a,
)

__all__ = ["box_b_button", "broker_fixture", "pg_url_fixture", "store_url_fixture"]

pytestmark = pytest.mark.network
VIP_CARD, VIP_ID = "6225880137001237", "410105198001012311"


async def section(http: httpx.AsyncClient, who: dict[str, str], code: str, name: str
                  ) -> tuple[int, str]:
    r = await http.get(f"/api/branches/{code}/config", headers=who)
    assert r.status_code == 200, r.text
    body = r.json()
    text = next(s["text"] for s in body["sections"] if s["name"] == name)
    return body["latest"]["version"], text


async def save(http: httpx.AsyncClient, who: dict[str, str], code: str, name: str,
               text: str, base: int, comment: str = "") -> httpx.Response:
    return await http.put(f"/api/branches/{code}/config/sections/{name}", headers=who,
                          json={"text": text, "base": base, "comment": comment})


async def rename_a(http: httpx.AsyncClient, who: dict[str, str]) -> None:
    """Version 2 of B1: business A renamed 个人综合业务."""
    base, queues = await section(http, who, B1, "queues")
    r = await save(http, who, B1, "queues",
                   queues.replace('name = "个人业务"', 'name = "个人综合业务"'), base)
    assert r.status_code == 201, r.text


async def test_sections_are_validated_by_the_boxs_rules_and_versioned(
        broker: LocalBroker, store_url: str) -> None:
    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        admin = await login(http)
        base, text = await section(http, admin, B1, "windows")
        assert base == 1 and "[[windows]]" in text and "queues = { A = 5, T = 9 }" in text

        bad = await save(http, admin, B1, "windows", text.replace("{ B = 9 }", "{ X = 9 }"),
                         base)
        assert bad.status_code == 422
        err = bad.json()["error"]
        assert err["key"] == "windows.3.queues" and "unknown queue 'X'" in err["problem"]

        syntax = await save(http, admin, B1, "windows", "[[windows]\nnumber = 1", base)
        assert syntax.status_code == 422 and syntax.json()["error"]["key"] == "(syntax)"
        stray = await save(http, admin, B1, "windows", text + "\n[thresholds]\n", base)
        assert stray.status_code == 422 and stray.json()["error"]["key"] == "thresholds"

        good = await save(http, admin, B1, "windows",
                          text.replace("queues = { B = 9 }", "queues = { B = 9, A = 2 }"),
                          base, "4号窗口也办个人业务")
        assert good.status_code == 201 and good.json()["version"] == 2
        stale = await save(http, admin, B1, "windows", text, base)  # edited from v1 again
        assert stale.status_code == 409

        versions = (await http.get(f"/api/branches/{B1}/config/versions",
                                   headers=admin)).json()["versions"]
        assert [(v["version"], v["section"], v["author"]) for v in versions] == [
            (2, "windows", "admin"), (1, "import", "config")]
        old = (await http.get(f"/api/branches/{B1}/config/versions/1", headers=admin)).json()
        old_windows = next(s["text"] for s in old["sections"] if s["name"] == "windows")
        assert "{ B = 9 }" in old_windows  # every version is kept as it was


async def test_vip_numbers_are_masked_and_kept_and_passwords_never_shown(
        broker: LocalBroker, store_url: str) -> None:
    async with office_running(broker, store_url) as centre, http_client(centre) as http:
        admin = await login(http)
        base, vips = await section(http, admin, B1, "vips")
        assert VIP_CARD not in vips and VIP_ID not in vips
        assert "622588******1237" in vips and "4101**********2311" in vips
        new_card = "6225880000009994"
        edited = vips.replace('cards = ["622588******1237"]',
                              f'cards = ["622588******1237", "{new_card}"]')
        r = await save(http, admin, B1, "vips", edited, base)
        assert r.status_code == 201, r.text
        forged = await save(http, admin, B1, "vips",
                            vips.replace("622588******1237", "622588******0000"), base + 1)
        assert forged.status_code == 422
        assert forged.json()["error"]["key"] == "vip_customers.0.cards.0"

        base, tellers = await section(http, admin, B1, "tellers")
        assert "password_hash" not in tellers and "scrypt" not in tellers
        added = tellers + '\n[[tellers]]\nid = "t4"\nname = "赵六"\npassword = "5678"\n'
        assert (await save(http, admin, B1, "tellers", added, base)).status_code == 201
        nameless = tellers + '\n[[tellers]]\nid = "t5"\nname = "钱七"\n'
        r = await save(http, admin, B1, "tellers", nameless, base + 1)
        assert r.status_code == 422 and r.json()["error"]["key"] == "tellers.3.password"
        audit = (await http.get(f"/api/audit?org={B1}", headers=admin)).json()["rows"]
        assert [a["action"] for a in audit if a["action"].startswith("config")] == [
            "config.save"] * 2  # refused edits store nothing
    store = open_store(store_url)
    try:
        body, = store.execute("SELECT body FROM branch_configs WHERE branch = ? AND "
                              "version = 3", (B1,)).fetchone()
        stored = json.loads(body) if isinstance(body, str) else body
        every = " ".join(r[0] for r in store.execute("SELECT detail FROM audit"))
    finally:
        store.close()
    assert stored["vip_customers"][0]["cards"] == [VIP_CARD, new_card]  # restored, whole
    t1, t4 = stored["tellers"][0], stored["tellers"][3]
    assert t1["password_hash"].startswith("scrypt$") and t4["password_hash"].startswith(
        "scrypt$")
    assert VIP_CARD not in every and new_card not in every


async def test_a_pushed_version_is_applied_by_the_box_and_shown_as_running(
        box: Box, broker: LocalBroker, store_url: str) -> None:
    uplink = uplink_for(broker)
    async with office_running(broker, store_url) as centre, running(uplink.run(box)), \
            http_client(centre) as http:
        admin = await login(http)
        await rename_a(http, admin)
        sent = await http.post(f"/api/branches/{B1}/config/push", headers=admin,
                               json={"version": 2})
        assert sent.status_code == 202, sent.text

        async def applied() -> dict[str, Any]:
            pushes = (await http.get(f"/api/branches/{B1}/config",
                                     headers=admin)).json()["pushes"]
            return pushes[0] if pushes and pushes[0]["state"] == "applied" else {}

        push = await wait_for(applied, 20, "the box's reply to the push")
        assert push["version"] == 2 and push["config_version"] == box.config.version
        assert box.config.queue("A").name == "个人综合业务"
        assert box.config.web["media_dir"] == ""  # the box's own path stays (<data dir>/media)

        async def running_v2() -> dict[str, Any]:
            rows = (await http.get("/api/config-status?org=100101",
                                   headers=admin)).json()["branches"]
            mine = next(r for r in rows if r["branch"] == B1)
            return mine if mine["running_version"] == 2 else {}

        mine = await wait_for(running_v2, 20, "the status announcing the new hash")
        assert mine["up_to_date"] is True and mine["latest"] == 2
        assert mine["name"] == "郑州金水路支行"


async def test_a_refused_push_shows_the_boxs_reason(
        box: Box, broker: LocalBroker, store_url: str) -> None:
    """A version made for another branch is refused by the box (its own check)."""
    uplink = uplink_for(broker)
    async with office_running(broker, store_url) as centre, running(uplink.run(box)), \
            http_client(centre) as http:
        admin = await login(http)
        cmd = await centre.send_command(B1, "config", {"config": {"branch": {"code": B2}}})

        async def answered() -> dict[str, Any] | None:
            return await centre.read(lambda s: s.reply(B1, cmd))

        reply = await wait_for(answered, 20, "the refusal")
        assert reply["ok"] is False and reply["error"]["code"] == "bad_config"
        assert (await http.get(f"/api/branches/{B1}/replies/{cmd}", headers=admin)
                ).json()["ok"] is False


async def test_a_push_the_busy_box_did_not_run_shows_not_run_and_applies_when_pushed_again(
        box: Box, broker: LocalBroker, store_url: str) -> None:
    """With its command line full the box answers a push ``busy``: nothing changed there,
    and the pushes table says "not run, push again", not "refused" (which reads as a fault
    in the configuration)."""
    uplink = uplink_for(broker, command_queue=1)
    async with office_running(broker, store_url) as centre, running(uplink.run(box)), \
            http_client(centre) as http:
        admin = await login(http)
        await rename_a(http, admin)
        await wait_for(lambda: uplink.connected, 20, "the box's uplink")

        async def answered() -> dict[str, Any]:
            pushes = (await http.get(f"/api/branches/{B1}/config",
                                     headers=admin)).json()["pushes"]
            return pushes[0] if pushes and pushes[0]["state"] != "pending" else {}

        async with held_line(centre, uplink, B1, waiting=1):
            sent = await http.post(f"/api/branches/{B1}/config/push", headers=admin,
                                   json={"version": 2})
            assert sent.status_code == 202, sent.text
            push = await wait_for(answered, 20, "the box's answer to the push")
        assert push["state"] == "not_run" and push["error"]["code"] == "busy", push
        assert box.config.queue("A").name == "个人业务"
        sent = await http.post(f"/api/branches/{B1}/config/push", headers=admin,
                               json={"version": 2})
        assert sent.status_code == 202, sent.text
        push = await wait_for(answered, 20, "the box's answer to the push again")
        assert push["state"] == "applied", push
        assert box.config.queue("A").name == "个人综合业务"


async def test_pausing_a_business_makes_the_kiosk_refuse_with_the_reason(
        box: Box, broker: LocalBroker, store_url: str) -> None:
    uplink = uplink_for(broker)
    async with office_running(broker, store_url) as centre, running(uplink.run(box)), \
            http_client(centre) as http:
        admin = await login(http)
        viewer = await add_user(http, admin, "v1", "viewer", "100101")
        no = await http.post(f"/api/branches/{B1}/queues/F/pause", headers=viewer,
                             json={"reason": "系统升级"})
        assert no.status_code == 403  # watching is not controlling
        r = await http.post(f"/api/branches/{B1}/queues/F/pause", headers=admin,
                            json={"reason": "系统升级"})
        assert r.status_code == 202

        async def paused() -> bool:
            return "F" in box.engine.state.paused_queues

        await wait_for(paused, 20, "the pause at the box")
        with pytest.raises(Refused) as refused:
            await box.execute(c.IssueTicket(queue="F"))
        assert "系统升级" in refused.value.message
        r = await http.post(f"/api/branches/{B1}/queues/F/resume", headers=admin)
        assert r.status_code == 202

        async def resumed() -> bool:
            return "F" not in box.engine.state.paused_queues

        await wait_for(resumed, 20, "the resume at the box")
        rows = (await http.get("/api/audit?action=queue", headers=admin)).json()["rows"]
        assert [(a["action"], a["target"], a["user"]) for a in rows] == [
            ("queue.resume", "F", "admin"), ("queue.pause", "F", "admin")]
        assert rows[1]["detail"]["reason"] == "系统升级" and rows[1]["org"] == B1


async def test_removing_a_business_the_centre_says_where_its_customers_go(
        box_b_button: Box, broker: LocalBroker, store_url: str) -> None:
    """A manager removes business A with ``[removed_queues.A] transfer_to = "B"`` at the
    centre: the version keeps the directive, the push carries it, the box moves A's waiting
    customers to B with their numbers, and the centre shows the push applied."""
    from central.toml_text import dumps

    box = box_b_button
    for queue in "AAB":
        await box.execute(c.IssueTicket(queue=queue))
    uplink = uplink_for(broker)
    async with office_running(broker, store_url) as centre, running(uplink.run(box)), \
            http_client(centre) as http:
        admin = await login(http)
        text = dumps(without_a(box.config, removed_queues={"A": {"transfer_to": "B"}}))
        r = await http.post(f"/api/branches/{B1}/config/import", headers=admin,
                            json={"text": text, "comment": "个人业务并入对公"})
        assert r.status_code == 201, r.text
        number = r.json()["version"]
        _, queues = await section(http, admin, B1, "queues")
        assert "[removed_queues.A]" in queues and 'transfer_to = "B"' in queues
        sent = await http.post(f"/api/branches/{B1}/config/push", headers=admin,
                               json={"version": number})
        assert sent.status_code == 202, sent.text

        async def answered() -> dict[str, Any]:
            pushes = (await http.get(f"/api/branches/{B1}/config",
                                     headers=admin)).json()["pushes"]
            return pushes[0] if pushes and pushes[0]["state"] != "pending" else {}

        push = await wait_for(answered, 20, "the box's reply to the push")
    assert push["state"] == "applied", push
    assert box.config.queue("A") is None
    moved = sorted((t.number, t.queue) for t in box.engine.state.waiting.values())
    assert moved == [("A001", "B"), ("A002", "B"), ("B001", "B")]
