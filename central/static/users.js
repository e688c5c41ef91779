/* Users of one's subtree: add, change role or scope, disable, reset a password. Only
 * users below oneself can be changed (the server enforces it; the page greys the rest). */
"use strict";
(() => {
  const {$, el, api, errorText, toast, orgOptions} = PD;
  const roles = ["admin", "manager", "auditor", "viewer"];
  let orgs = [];
  async function load() {
    const res = await api("GET", "/api/users");
    if (!res.ok) { toast(errorText(res), true); return; }
    const scopes = await PD.orgNames(res.data.users.map((u) => u.scope));  // the scopes on screen
    $("#rows").replaceChildren(el("thead", {}, el("tr", {}, ...["登录名 Login", "姓名 Name",
      "角色 Role", "机构 Scope", "状态 State", "新密码 New password", ""].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...res.data.users.map((u) => {
      const off = !u.manageable;
      const role = el("select", {disabled: off}, ...roles.map((r) => el("option", {value: r, selected: r === u.role}, r)));
      const own = scopes.get(u.scope) || {code: u.scope, name: u.scope};
      const scope = el("select", {disabled: off}, ...[own, ...orgs.filter((o) => o.code !== u.scope)].map((o) =>
        el("option", {value: o.code, selected: o.code === u.scope, title: o.code}, o.name)));
      const pw = el("input", {type: "password", minlength: 8, maxlength: 128, disabled: off, placeholder: "不改 unchanged"});
      const disabled = el("input", {type: "checkbox", checked: u.disabled, disabled: off});
      return el("tr", {"data-user": u.id}, el("td", {}, u.id), el("td", {}, u.name),
        el("td", {}, role), el("td", {}, scope),
        el("td", {}, el("label", {}, disabled, " 停用 disabled")), el("td", {}, pw),
        el("td", {}, u.id === PD.boot.user.id ? el("span", {class: "muted"}, "本人 you (点击右上角姓名改密码)")
          : off ? el("span", {class: "muted"}, "同级或上级 peer/superior") :
          el("button", {type: "button", onclick: async () => {
            const body = {role: role.value, scope: scope.value, disabled: disabled.checked};
            if (pw.value) body.password = pw.value;
            const r = await api("PUT", "/api/users/" + u.id, body);
            toast(r.ok ? "已保存 Saved" : errorText(r), !r.ok);
            if (r.ok) load();
          }}, "保存 Save")));
    })));
  }
  $("#add").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("#error").textContent = "";
    const r = await api("POST", "/api/users", {id: $("#id").value, name: $("#name").value,
      role: $("#role").value, scope: $("#scope").value, password: $("#password").value});
    if (!r.ok) { $("#error").textContent = errorText(r); return; }
    toast("已新增 Added " + r.data.id);
    $("#add").reset();
    load();
  });
  (async () => {
    orgs = (await orgOptions($("#scope"), null, {registered: true})) || [];
    load();
  })();
})();
