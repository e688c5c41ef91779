/* Alert thresholds of one org node, on the alerts page (docs/alerts.md, "Thresholds per
 * org node, inherited"): a node stores only the keys it sets; an empty field inherits.
 * Reads GET /api/alerts/thresholds/{org}; saves through PUT /api/office/alert-thresholds/
 * {org} (which keeps the masked phones it was shown); DELETE /api/alerts/thresholds/{org}
 * makes the node inherit everything. Keys the form does not show are kept as they are. */
"use strict";
(() => {
  const {boot, $, el, api, errorText, orgOptions, toast} = PD;
  if (!((boot.user && boot.user.permissions) || []).includes("control")) return;

  // key, kind, Chinese label, English label, unit hint
  const FIELDS = [
    ["waiting_over", "int", "排队等待人数超过", "Customers waiting over", "人 · 0 关闭 off"],
    ["wait_over_min", "number", "等待超过未叫号", "Waiting without a call over", "分钟 min · 0 关闭 off"],
    ["offline_after_s", "number", "网点离线多久后预警", "Offline alert after", "秒 s · 0 关闭 off"],
    ["max_per_hour", "int", "每网点每类每小时最多", "Alerts per branch and kind per hour", "条 alerts"],
    ["sms_per_hour", "int", "每个号码每小时最多短信", "SMS per phone per hour", "条 SMS"],
    ["bad_rating", "bool", "差评预警", "Bad ratings", ""],
    ["device_fault", "bool", "设备故障预警", "Device faults", ""],
    ["no_data", "bool", "未上传数据预警", "No data from a branch", ""],
    ["totals_mismatch", "bool", "数据对账不一致预警", "Totals mismatch", ""],
    ["sms_to", "phones", "短信接收号码", "SMS to (comma-separated)", "逗号分隔 comma-separated"],
  ];
  const LABEL = Object.fromEntries(FIELDS.map(([k, , zh, en]) => [k, `${zh} ${en}`]));
  let own = {};

  function show(v) {
    if (Array.isArray(v)) return v.length ? v.join(", ") : "无 none";
    if (v === true) return "开 on";
    if (v === false) return "关 off";
    return v === null || v === undefined ? "—" : String(v);
  }
  function input(key, kind, inherited) {
    const id = "th-" + key;
    if (kind === "bool") {
      return el("select", {id, name: key},
        el("option", {value: ""}, `继承 inherit (${show(inherited)})`),
        el("option", {value: "true"}, "开 on"), el("option", {value: "false"}, "关 off"));
    }
    return el("input", {id, name: key, type: kind === "phones" ? "text" : "number",
      step: kind === "int" ? "1" : "any", inputmode: kind === "phones" ? "tel" : "decimal",
      placeholder: `继承 inherit: ${show(inherited)}`});
  }
  function drawFields(data) {
    own = data.own || {};
    const inherited = data.effective || {};
    $("#th-fields").replaceChildren(...FIELDS.map(([key, kind, zh, en, unit]) => {
      const field = input(key, kind, inherited[key]);
      if (key in own) field.value = kind === "phones" ? own[key].join(", ") : String(own[key]);
      return el("label", {"data-key": key}, el("span", {}, zh, el("small", {}, ` ${en}`)),
        field, el("small", {class: "muted"}, unit), el("span", {class: "field-error"}));
    }));
    const keys = Object.keys(own);
    $("#th-state").textContent = keys.length
      ? `本节点自设 ${keys.length} 项 This node sets ${keys.length} key(s)` : "全部继承 Inherits everything";
    clearErrors();
  }
  function clearErrors() {
    $("#th-error").textContent = "";
    for (const l of document.querySelectorAll("#th-fields label")) {
      l.classList.remove("bad");
      $(".field-error", l).textContent = "";
    }
  }
  function value(key, kind) {
    const raw = $("#th-" + key).value.trim();
    if (raw === "") return undefined;
    if (kind === "bool") return raw === "true";
    if (kind === "phones") return raw.split(/[,,;;\s]+/).filter(Boolean);
    const n = Number(raw);
    return Number.isFinite(n) ? n : raw;  // not a number: the centre says so
  }
  function body() {
    const out = {};
    for (const [k, v] of Object.entries(own)) {
      if (!(k in LABEL)) out[k] = v;  // keys this form does not show are kept
    }
    for (const [key, kind] of FIELDS) {
      const v = value(key, kind);
      if (v !== undefined) out[key] = v;
    }
    return out;
  }
  function why(f) {
    const c = f.ctx || {};
    if (f.type === "greater_than_equal") return `不能小于 ${c.ge} · must be ≥ ${c.ge}`;
    if (f.type === "int_parsing" || f.type === "int_from_float") return "请输入整数 · a whole number";
    if (f.type === "float_parsing") return "请输入数字 · a number";
    if (f.key === "sms_to") return "号码格式不正确 · " + f.msg;
    return f.msg;
  }
  function showErrors(res) {
    const fields = (res.data.error && res.data.error.fields) || [];
    const lines = [];
    for (const f of fields) {
      const label = document.querySelector(`#th-fields label[data-key="${f.key}"]`);
      if (label) {
        label.classList.add("bad");
        $(".field-error", label).textContent = why(f);
      }
      lines.push(`${LABEL[f.key] || f.key}:${why(f)}`);
    }
    $("#th-error").textContent = lines.length
      ? "请修改以下设置 Please correct:\n" + lines.join("\n") : errorText(res);
  }
  async function load() {
    const res = await api("GET", "/api/alerts/thresholds/" + encodeURIComponent($("#th-org").value));
    if (!res.ok) { $("#th-error").textContent = errorText(res); return; }
    drawFields(res.data);
  }
  async function save(ev) {
    ev.preventDefault();
    clearErrors();
    const org = $("#th-org").value;
    const res = await api("PUT", "/api/office/alert-thresholds/" + encodeURIComponent(org), body());
    if (!res.ok) { showErrors(res); return; }
    drawFields(res.data);
    toast("预警阈值已保存 Thresholds saved");
  }
  async function inherit() {
    const org = $("#th-org").value;
    if (!confirm(`${org} 的预警阈值全部改为继承上级?Make ${org} inherit every threshold?`)) return;
    const res = await api("DELETE", "/api/alerts/thresholds/" + encodeURIComponent(org));
    if (!res.ok) { $("#th-error").textContent = errorText(res); return; }
    drawFields(res.data);
    toast("已改为继承 Inherits everything now");
  }

  $("#thresholds-page").classList.remove("hidden");
  $("#th-form").addEventListener("submit", save);
  $("#th-inherit").addEventListener("click", inherit);
  $("#th-org").addEventListener("change", load);
  orgOptions($("#th-org"), boot.org).then(load);
})();
