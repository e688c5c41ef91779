/* Alerts: a page shell on the alerts service's JSON API (/api/alerts…): the open alerts of
 * the user's subtree, acknowledged by a click, with a sound for new ones. */
"use strict";
(() => {
  const {boot, $, el, api, errorText, when, toast} = PD;
  let seen = new Set(), first = true, audio = null;

  function beep() {
    if (!$("#sound").checked) return;
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    const o = audio.createOscillator(), g = audio.createGain();
    o.frequency.value = 880; g.gain.value = 0.15;
    o.connect(g); g.connect(audio.destination); o.start(); o.stop(audio.currentTime + 0.35);
  }
  async function load() {
    const q = new URLSearchParams({org: boot.org});
    if ($("#open-only").checked) q.set("open", "true");
    const res = await api("GET", "/api/alerts?" + q);
    if (!res.ok) {
      if (res.status !== 404) $("#note").textContent = errorText(res);
      return;
    }
    $("#note").textContent = "";
    const rows = res.data.alerts || res.data.rows || [];
    const fresh = rows.filter((a) => !seen.has(a.id));
    rows.forEach((a) => seen.add(a.id));
    if (!first && fresh.length) beep();
    first = false;
    $("#alerts").replaceChildren(el("thead", {}, el("tr", {}, ...["时间 When", "机构 Org",
      "类型 Kind", "内容 Message", "状态 State", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows.map((a) => el("tr", {"data-alert": a.id},
      el("td", {}, when(a.at || a.raised_at)), el("td", {}, a.org || a.branch || ""),
      el("td", {}, a.kind || a.rule || ""), el("td", {}, a.message || ""),
      el("td", {}, a.acked_at || a.acknowledged_at ? "已确认 " + (a.acked_by || "") : "未确认"),
      el("td", {}, a.acked_at || a.acknowledged_at ? "" : el("button", {type: "button",
        onclick: () => ack(a)}, "确认 Acknowledge"))))));
  }
  async function ack(a) {
    const res = await api("POST", `/api/alerts/${encodeURIComponent(a.id)}/ack`);
    if (!res.ok) { toast(errorText(res), true); return; }
    load();
  }
  $("#open-only").addEventListener("change", load);
  load();
  setInterval(load, 10000);
})();
