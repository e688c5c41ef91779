/* Which branch runs which configuration version (from each box's retained status). */
"use strict";
(() => {
  const {boot, $, el, api, errorText, when, toast} = PD;
  async function load() {
    const res = await api("GET", "/api/config-status?org=" + boot.org);
    if (!res.ok) { toast(errorText(res), true); return; }
    const state = {applied: ["已生效", "ok"], refused: ["被拒绝", "bad"], pending: ["待确认", "warn"],
      not_run: ["未执行,请重新下发", "warn"]};
    $("#rows").replaceChildren(el("thead", {}, el("tr", {}, ...["网点 Branch", "最新版本 Latest",
      "运行版本 Running", "状态 State", "最近下发 Last push", "配置散列 Hash", "在线 Online"]
      .map((h) => el("th", {}, h)))),
    el("tbody", {}, ...res.data.branches.map((b) => {
      const p = b.last_push, [pt, pc] = p ? state[p.state] : ["—", ""];
      return el("tr", {"data-branch": b.branch},
        el("td", {}, el("a", {href: "/office/config?branch=" + b.branch, title: b.branch}, b.name || b.branch)),
        el("td", {}, b.latest ? "v" + b.latest : "—"),
        el("td", {}, b.running_version ? "v" + b.running_version
          : b.running_hash ? "本地/未知 local" : "—"),
        el("td", {}, b.up_to_date ? el("span", {class: "tag ok"}, "最新 up to date")
          : el("span", {class: "tag warn"}, "未同步 not up to date")),
        el("td", {}, p ? [`v${p.version} ${when(p.sent_at)} `, el("span", {class: "tag " + pc}, pt),
          p.error ? " " + (p.error.message || "") : ""].reduce((acc, x) => { acc.append(x); return acc; },
          el("span")) : "—"),
        el("td", {}, el("code", {}, b.running_hash || "—")),
        el("td", {}, b.online ? "在线" : b.online === false ? "离线" : "—"));
    })));
  }
  load();
  setInterval(load, 5000);
})();
