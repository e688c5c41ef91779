/* 预约管理 (H2): the staff search over GET /api/staff/appointments — bookings of the user's
 * subtree by org or branch, day range, business, state, name, phone, ID number — listed as
 * the API returns them (names shown, numbers masked, no codes), counted per state, and the
 * same search as CSV (/api/staff/appointments.csv). */
"use strict";
(() => {
  const {boot, $, el, api, errorText, orgOptions, when} = PD;
  const PAGE = 100;
  const STATES = [["booked", "已预约 Booked"], ["redeemed", "已取号 Redeemed"],
    ["missed", "已过期 Missed"], ["cancelled", "已取消 Cancelled"]];
  const STATE_NAMES = Object.fromEntries(STATES);
  const COLUMNS = [["day", "日期 Day"], ["slot_label", "时段 Slot"], ["branch_name", "网点 Branch"],
    ["queue_name", "业务 Business"], ["name", "姓名 Name"], ["phone", "手机 Phone"],
    ["id_number", "证件号 ID number"], ["state", "状态 State"], ["ticket_number", "票号 Ticket"],
    ["channel", "渠道 Channel"], ["booked_at", "预约时间 Booked at"]];
  let offset = 0;

  if (!boot.enabled) return;
  $("#note").textContent = "";
  $("#day-from").value = $("#day-to").value = boot.today;
  orgOptions($("#org"), boot.org);
  api("GET", "/api/staff/businesses").then((res) => {  // what the branches offer for booking
    const queues = (res.ok && res.data.businesses) || [];
    $("#queue").append(...queues.map((q) => el("option", {value: q.id},
      `${q.name} ${q.id}` + (q.name_en ? ` ${q.name_en}` : ""))));
  });

  function query() {
    const q = new URLSearchParams();
    const fields = [["branch", "#org"], ["day_from", "#day-from"], ["day_to", "#day-to"],
      ["queue", "#queue"], ["state", "#state"], ["name", "#name"], ["phone", "#phone"],
      ["id_number", "#id-number"]];
    for (const [key, sel] of fields) {
      const v = $(sel).value.trim();
      if (v) q.set(key, v);
    }
    if ($("#fuzzy").checked) q.set("fuzzy", "true");
    return q;
  }
  function cell(key, b) {
    if (key === "state") return el("td", {}, el("span", {class: "tag " + b.state}, STATE_NAMES[b.state] || b.state));
    if (key === "branch_name") return el("td", {title: b.branch}, b.branch_name || b.branch);
    if (key === "booked_at") return el("td", {}, when(b.booked_at));  // not the raw ISO string
    const v = b[key];
    return el("td", {}, v === null || v === undefined || v === "" ? "—" : String(v));
  }
  function counts(states, total) {
    $("#counts").replaceChildren(el("span", {class: "tag", "data-state": "total"}, `共 Total ${total}`),
      ...STATES.map(([key, label]) => el("span", {class: "tag " + key, "data-state": key},
        `${label} ${states[key] || 0}`)));
    $("#counts").classList.remove("hidden");
  }
  async function load() {
    const q = query();
    const res = await api("GET", `/api/staff/appointments?${q}&limit=${PAGE}&offset=${offset}`);
    if (!res.ok) {
      $("#note").textContent = errorText(res);
      $("#note").className = "error";
      return;
    }
    $("#note").textContent = "";
    const {total, states, bookings} = res.data;
    counts(states || {}, total);
    $("#rows").replaceChildren(
      el("thead", {}, el("tr", {}, ...COLUMNS.map(([, h]) => el("th", {}, h)))),
      el("tbody", {}, ...bookings.map((b) => el("tr", {"data-booking": b.id, "data-state": b.state},
        ...COLUMNS.map(([key]) => cell(key, b))))));
    if (!bookings.length) $("#note").textContent = "没有符合条件的预约。No bookings match.";
    $("#note").className = "muted";
    $("#page-info").textContent = total ? `${offset + 1}–${offset + bookings.length} / ${total}` : "";
    $("#prev").classList.toggle("hidden", offset === 0);
    $("#next").classList.toggle("hidden", offset + bookings.length >= total);
    const csv = $("#csv");
    csv.href = `/api/staff/appointments.csv?${q}`;
    csv.classList.remove("hidden");
  }
  $("#filters").addEventListener("submit", (ev) => { ev.preventDefault(); offset = 0; load(); });
  $("#prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
  $("#next").addEventListener("click", () => { offset += PAGE; load(); });
  load();
})();
