/* Alerts: the page over the alerts service's JSON API (central/alerts.py: GET /api/alerts,
 * POST /api/alerts/{id}/ack): the alerts of the user's subtree, newest first, acknowledged
 * by a click, with a sound for new ones. Until the service is on this centre the page says
 * so instead of failing. */
"use strict";
(() => {
  const {boot, $, el, api, errorText, when, toast} = PD;
  const seen = new Set();
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
    const fresh = rows.filter((a) => !seen.has(a.id));
    rows.forEach((a) => seen.add(a.id));
    if (!first && fresh.length) beep();
    first = false;
    $("#alerts").replaceChildren(el("thead", {}, el("tr", {}, ...["时间 When", "网点 Branch",
      "类型 Kind", "内容 Message", "状态 State", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((a) => el("tr", {"data-alert": a.id, class: a.level === "critical" ? "bad" : null},
      el("td", {}, when(a.raised_at)), el("td", {}, a.branch || ""), el("td", {}, a.kind || ""),
      el("td", {}, a.message || "", el("small", {}, a.message_en || "")),
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
