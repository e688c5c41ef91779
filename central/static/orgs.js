/* The organisation tree: add, rename and delete nodes below one's own. */
"use strict";
(() => {
  const {boot, $, el, api, errorText, toast} = PD;
  const kinds = {head: "省分行", city: "分行", branch: "网点"};
  /* The tree in code order, a page (1000 nodes) at a time: a province of 10,000 branches
   * is not loaded at once; "More" brings the next page. */
  let next = null;
  async function load(after) {
    const res = await api("GET", "/api/orgs?" + new URLSearchParams(after ? {after} : {}));
    if (!res.ok) { toast(errorText(res), true); return; }
    const scope = res.data.scope;
    next = res.data.next;
    $("#rows-more").classList.toggle("hidden", !res.data.more);
    const rows = res.data.orgs.map((o) => row(o, o.code.length > scope.length));
    if (after) { $("#rows tbody").append(...rows); return; }
    $("#rows").replaceChildren(el("thead", {}, el("tr", {}, ...["代码 Code", "名称 Name",
      "英文名 English", "类型 Kind", "上级 Parent", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows));
  }
  function row(o, below) {
    const name = el("input", {value: o.name, maxlength: 60, disabled: !o.registered});
    const en = el("input", {value: o.name_en, maxlength: 120, disabled: !o.registered});
    return el("tr", {"data-org": o.code},
      el("td", {}, "\u00a0\u00a0".repeat(Math.max(0, (o.code.length - 4) / 2)) + o.code),
      el("td", {}, name), el("td", {}, en),
      el("td", {}, o.registered ? kinds[o.kind] + " " + o.kind : el("span", {class: "tag warn"}, "未登记 unregistered")),
      el("td", {}, o.parent || "—"),
      el("td", {}, o.registered ? el("button", {type: "button", onclick: async () => {
        const r = await api("PUT", "/api/orgs/" + o.code, {name: name.value, name_en: en.value});
        toast(r.ok ? "已保存 Saved" : errorText(r), !r.ok);
      }}, "保存 Save") : el("button", {type: "button", onclick: () => {
        $("#code").value = o.code; $("#kind").value = "branch"; $("#name").focus();
      }}, "登记 Register"),
      o.registered && below ? el("button", {type: "button", class: "danger", onclick: async () => {
        if (!confirm(`删除 ${o.name} ${o.code}?`)) return;
        const r = await api("DELETE", "/api/orgs/" + o.code);
        toast(r.ok ? "已删除 Deleted" : errorText(r), !r.ok);
        load();
      }}, "删除 Delete") : null));
  }
  $("#rows-next").addEventListener("click", () => { if (next) load(next); });
  $("#add").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("#error").textContent = "";
    const r = await api("POST", "/api/orgs", {code: $("#code").value, name: $("#name").value,
      name_en: $("#name_en").value, kind: $("#kind").value});
    if (!r.ok) { $("#error").textContent = errorText(r); return; }
    toast("已新增 Added " + r.data.code);
    $("#add").reset();
    load();
  });
  load();
})();
