/* Reports (E1–E5, C4): a page shell on the reports service's JSON API (/api/reports…).
 * When that service is not on this centre, the page says so instead of failing. */
"use strict";
(() => {
  const {boot, $, el, api, errorText, orgOptions} = PD;
  $("#date").value = new Date().toISOString().slice(0, 10);
  orgOptions($("#org"), boot.org);

  async function catalogue() {
    const res = await api("GET", "/api/reports");
    if (!res.ok) return false;
    const list = res.data.reports || [];
    $("#report").replaceChildren(...list.map((r) =>
      el("option", {value: r.id || r.name}, r.title || r.name || r.id)));
    $("#note").textContent = "";
    return true;
  }
  function table(data) {
    const cols = data.columns || (data.rows && data.rows[0] ? Object.keys(data.rows[0]) : []);
    const label = (c) => (typeof c === "string" ? c : c.title || c.name);
    const key = (c) => (typeof c === "string" ? c : c.key || c.name);
    return el("table", {class: "list"},
      el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", {}, label(c))))),
      el("tbody", {}, ...(data.rows || []).map((r) => el("tr", {},
        ...cols.map((c) => el("td", {}, Array.isArray(r) ? r[cols.indexOf(c)] : r[key(c)]))))));
  }
  $("#filters").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams({org: $("#org").value, period: $("#period").value,
      date: $("#date").value});
    const path = "/api/reports/" + encodeURIComponent($("#report").value);
    const res = await api("GET", path + "?" + q);
    if (!res.ok) { $("#result").replaceChildren(el("p", {class: "error"}, errorText(res))); return; }
    $("#result").replaceChildren(el("h2", {}, res.data.title || $("#report").value), table(res.data));
    for (const fmt of ["xlsx", "csv"]) {
      const a = $("#" + fmt);
      a.href = path + "?" + q + "&format=" + fmt;
      a.classList.remove("hidden");
    }
  });
  catalogue();
})();
