/* Reports (E1–E5, C4): the page over the reports service's JSON API. The service lives in
 * central/reports (GET /api/reports, /api/reports/{id}[/xlsx|/csv]); until it is on this
 * centre the page says so instead of failing. */
"use strict";
(() => {
  const {boot, $, el, api, errorText, orgOptions, num} = PD;
  $("#date").value = new Date().toISOString().slice(0, 10);
  orgOptions($("#org"), boot.org);

  async function catalogue() {
    const res = await api("GET", "/api/reports");
    if (!res.ok) return false;
    const list = res.data.reports || [];
    $("#report").replaceChildren(...list.map((r) => el("option", {value: r.id},
      (r.spec ? r.spec + " · " : "") + (r.title || r.id) + (r.title_en ? " " + r.title_en : ""))));
    $("#note").textContent = "";
    return true;
  }
  function dateFor(period, date) {
    return period === "year" ? date.slice(0, 4) : period === "month" ? date.slice(0, 7) : date;
  }
  function query() {
    const period = $("#period").value;
    return new URLSearchParams({org: $("#org").value, period, date: dateFor(period, $("#date").value)});
  }
  function table(data) {
    const cols = data.columns || [];
    const label = (c) => c.header || [c.title, c.unit ? `(${c.unit})` : ""].join("");
    const cell = (v) => (typeof v === "number" ? el("td", {class: "n"}, num(Math.round(v * 100) / 100)) : el("td", {}, v === null || v === undefined ? "—" : String(v)));
    const rows = (data.rows || []).map((r) => el("tr", {}, ...cols.map((c) => cell(r[c.key]))));
    if (data.total) {
      rows.push(el("tr", {class: "total"}, ...cols.map((c, i) =>
        cell(i === 0 && data.total[c.key] === undefined ? data.total.label || "合计" : data.total[c.key]))));
    }
    return el("div", {class: "scroll"}, el("table", {class: "list", id: "report-table"},
      el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", {}, label(c))))), el("tbody", {}, ...rows)));
  }
  function chart(data) {
    const ch = data.chart;
    if (!ch || !ch.series || !ch.series.length || !(data.rows || []).length) return null;
    const box = el("div", {class: "chart wide"});
    setTimeout(() => PDChart.bars(box, data.rows.map((r) => Number(r[ch.series[0]]) || 0),
      data.rows.map((r) => String(r[ch.category] ?? "")), null, ch.title), 0);
    return el("figure", {class: "card"}, el("figcaption", {}, ch.title || ""), box);
  }
  $("#filters").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const id = $("#report").value, q = query();
    const res = await api("GET", `/api/reports/${encodeURIComponent(id)}?${q}`);
    if (!res.ok) { $("#result").replaceChildren(el("p", {class: "error"}, errorText(res))); return; }
    const d = res.data;
    $("#result").replaceChildren(...[el("h2", {}, d.title || id, el("small", {}, d.title_en || "")),
      chart(d), table(d), ...(d.notes || []).map((n) => el("p", {class: "muted"}, n))].filter(Boolean));
    for (const fmt of ["xlsx", "csv"]) {
      const a = $("#" + fmt);
      a.href = `/api/reports/${encodeURIComponent(id)}/${fmt}?${q}`;
      a.classList.remove("hidden");
    }
  });
  catalogue();
})();
