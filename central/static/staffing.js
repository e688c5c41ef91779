/* 排班建议 Staffing advice: a branch's learned day simulated on the real engine, the fewest
 * windows per hour meeting the service level (GET /api/office/staffing), and its CSV. */
"use strict";
(() => {
  const {boot, $, el, api, errorText, num} = PD;
  orgOptions();

  async function orgOptions() {
    await PD.orgOptions($("#branch"), boot.branch, {kind: "branch"});
  }

  function query() {
    const q = new URLSearchParams({branch: $("#branch").value, days: $("#days").value,
      target_min: $("#target").value, level: $("#level").value});
    if ($("#date").value) q.set("date", $("#date").value);  // default: today at the branch
    return q.toString();
  }

  function pct(x) { return x === null || x === undefined ? "—" : (x * 100).toFixed(1) + "%"; }

  function show(a) {
    $("#rows").replaceChildren(
      el("thead", {}, el("tr", {}, ...["小时 Hour", "建议窗口数 Windows", "开放窗口 Open windows",
        "预计客户 Expected customers", "目标内比例 Within target", "达标 Met"]
        .map((h) => el("th", {}, h)))),
      el("tbody", {}, ...a.hours.map((h) => el("tr", {"data-hour": h.hour},
        el("td", {}, String(h.hour).padStart(2, "0") + ":00"),
        el("td", {class: "num"}, num(h.windows)),
        el("td", {}, h.open.join(" ") || "—"),
        el("td", {class: "num"}, num(h.expected_customers)),
        el("td", {class: "num"}, pct(h.within_target)),
        el("td", {}, h.met ? el("span", {class: "tag ok"}, "是 yes")
          : el("span", {class: "tag bad"}, "否 no"))))),
      el("tfoot", {}, el("tr", {id: "total"}, el("th", {}, "合计 Total"),
        el("th", {class: "num"}, num(a.window_hours)), el("th", {colspan: 4},
          "窗口小时 window-hours"))));
    $("#summary").textContent = `${a.date}:共需 ${a.window_hours} 个窗口小时,` +
      (a.met ? "每小时均达标" : "部分小时无法达标") + `(${a.history.first_day} 至 ` +
      `${a.history.last_day} 的记录,模拟 ${a.simulated_days} 天)。 ` +
      `${a.window_hours} window-hours; ` + (a.met ? "every hour meets the level." :
        "some hours cannot meet the level.");
    $("#summary").classList.remove("hidden");
  }

  $("#filters").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const q = query();
    $("#run").disabled = true;
    $("#note").textContent = "正在模拟… Simulating…";
    $("#note").classList.remove("hidden");
    $("#csv").classList.add("hidden");
    const res = await api("GET", "/api/office/staffing?" + q);
    $("#run").disabled = false;
    if (!res.ok) {
      $("#note").textContent = errorText(res);
      $("#rows").replaceChildren();
      $("#summary").classList.add("hidden");
      return;
    }
    $("#note").classList.add("hidden");
    show(res.data);
    $("#csv").href = "/api/office/staffing.csv?" + q;
    $("#csv").classList.remove("hidden");
  });
})();
