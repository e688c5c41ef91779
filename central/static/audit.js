/* The audit log: who did what, when (newest first, paged with "older"). */
"use strict";
(() => {
  const {$, el, api, errorText, when, toast} = PD;
  let last = null;
  async function load(more) {
    const q = new URLSearchParams({limit: "100"});
    const action = $("#action").value.trim();
    if (action) q.set("action", action);
    if (more && last) q.set("before", last);
    const res = await api("GET", "/api/audit?" + q);
    if (!res.ok) { toast(errorText(res), true); return; }
    const rows = res.data.rows;
    if (rows.length) last = rows[rows.length - 1].id;
    const body = rows.map((r) => el("tr", {},
      el("td", {}, when(r.at)), el("td", {}, r.user), el("td", {}, r.action),
      el("td", {}, r.org), el("td", {}, r.target),
      el("td", {}, el("code", {}, JSON.stringify(r.detail))), el("td", {}, r.address)));
    if (more) $("#rows tbody").append(...body);
    else $("#rows").replaceChildren(el("thead", {}, el("tr", {}, ...["时间 When", "用户 User",
      "操作 Action", "机构 Org", "对象 Target", "内容 Detail", "地址 From"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...body));
    $("#more").classList.toggle("hidden", rows.length < 100);
  }
  $("#filters").addEventListener("submit", (ev) => { ev.preventDefault(); last = null; load(false); });
  $("#more").addEventListener("click", () => load(true));
  load(false);
})();
