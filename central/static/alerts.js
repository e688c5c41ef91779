/* Alerts: the page over the alerts service's JSON API (central/alerts.py: GET /api/alerts,
 * POST /api/alerts/{id}/ack): the alerts of the user's subtree, newest first, acknowledged
 * by a click, with a sound for new ones. Until the service is on this centre the page says
 * so instead of failing. */
"use strict";
(() => {
  const {boot, $, el, api, errorText, when, toast, alertKind, plain, orgNameMap, branchTag} = PD;
  const seen = new Set();
  // A branch's windows (from its live view), to name a faulty bus device by its window:
  // fetched once per branch with a device alert, at most WINDOWS_KEPT branches kept.
  const windowsOf = new Map(), WINDOWS_KEPT = 50;
  function windows(code) {
    if (!windowsOf.has(code)) {
      if (windowsOf.size >= WINDOWS_KEPT) windowsOf.clear();
      windowsOf.set(code, api("GET", "/api/live?org=" + encodeURIComponent(code)).then((r) =>
        r.ok && r.data.branch ? r.data.branch.windows || [] : []));
    }
    return windowsOf.get(code);
  }
  let first = true;

  function beep() {
    if ($("#sound").checked) PD.beep();
  }
  async function load() {
    const q = new URLSearchParams({org: boot.org, state: $("#open-only").checked ? "unacked" : "all"});
    const res = await api("GET", "/api/alerts?" + q);
    if (!res.ok) {
      if (res.status !== 404) $("#note").textContent = errorText(res);
      return;
    }
    $("#note").textContent = "";
    const rows = res.data.alerts || [];
    const names = await orgNameMap(rows.map((a) => a.branch));  // the branches on screen
    const bound = new Map();
    for (const a of rows) {
      if (a.kind === "device_fault" && !bound.has(a.branch)) bound.set(a.branch, await windows(a.branch));
    }
    const fresh = rows.filter((a) => !seen.has(a.id));
    rows.forEach((a) => seen.add(a.id));
    if (!first && fresh.length) beep();
    first = false;
    $("#alerts").replaceChildren(el("thead", {}, el("tr", {}, ...["时间 When", "网点 Branch",
      "类型 Kind", "内容 Message", "状态 State", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((a) => el("tr", {"data-alert": a.id, class: a.level === "critical" ? "bad" : null},
      el("td", {}, when(a.raised_at)), el("td", {}, branchTag(a.branch, names)),
      el("td", {"data-kind": a.kind}, alertKind(a.kind)),
      el("td", {}, plain(a.message, "zh", bound.get(a.branch)),
        el("small", {}, plain(a.message_en, "en", bound.get(a.branch)))),
      el("td", {}, a.acked_at ? `已确认 ${a.acked_by || ""} ${when(a.acked_at)}`
        : a.resolved_at ? "已恢复 resolved" : el("span", {class: "tag bad"}, "未确认")),
      el("td", {}, a.acked_at ? "" : el("button", {type: "button", onclick: () => ack(a)}, "确认 Acknowledge"))))));
  }
  async function ack(a) {
    const res = await api("POST", `/api/alerts/${a.id}/ack`);
    if (!res.ok) { toast(errorText(res), true); return; }
    load();
  }
  $("#open-only").addEventListener("change", load);
  load();
  setInterval(load, 5000);
})();
