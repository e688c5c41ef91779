/* A branch's configuration by section: TOML validated by the box's own rules, every save a
 * new version, versions pushed to the branch and confirmed by its reply (G2). */
"use strict";
(() => {
  const {boot, $, el, api, errorText, when, toast, orgOptions} = PD;
  let branch = boot.branch, current = null, section = "queues", drafts = {}, timer = null;

  async function start() {
    const orgs = await orgOptions($("#branch"), branch, {kind: "branch", registered: true});
    if (!branch && orgs.length) branch = orgs[0].code;
    $("#branch").value = branch || "";
    if (branch) load();
  }
  $("#branch").addEventListener("change", () => {
    branch = $("#branch").value; drafts = {};
    history.replaceState(null, "", "/office/config?branch=" + branch);
    load();
  });

  async function load() {
    const res = await api("GET", `/api/branches/${branch}/config`);
    if (!res.ok) { toast(errorText(res), true); return; }
    current = res.data;
    const has = !!current.latest;
    $("#body").classList.toggle("hidden", !has);
    $("#import").classList.toggle("hidden", has || !boot.can_edit);
    if (!has) { $("#head").textContent = "尚无配置 No configuration yet"; return; }
    const l = current.latest;
    $("#head").textContent = `当前 v${l.version} · ${l.author} · ${when(l.created_at)}` +
      (l.comment ? " · " + l.comment : "");
    drawTabs(); drawSection(); drawPushes(); loadVersions(); loadMedia();
  }
  function drawTabs() {
    $("#tabs").replaceChildren(...current.sections.map((s) => el("button", {type: "button",
      class: s.name === section ? "active" : null, "data-section": s.name, onclick: () => {
        drafts[section] = $("#text").value; section = s.name; drawTabs(); drawSection();
      }}, s.title.split(" ")[0] + (drafts[s.name] !== undefined && drafts[s.name] !== text(s.name) ? " •" : ""))));
  }
  const text = (name) => current.sections.find((s) => s.name === name).text;
  function drawSection() {
    const s = current.sections.find((x) => x.name === section);
    $("#section-title").textContent = s.title;
    $("#text").value = drafts[section] !== undefined ? drafts[section] : s.text;
    $("#text").readOnly = !boot.can_edit;
    $("#save").classList.toggle("hidden", !boot.can_edit);
    $("#comment").classList.toggle("hidden", !boot.can_edit);
    $("#error").textContent = "";
  }
  $("#save").addEventListener("click", async () => {
    $("#error").textContent = "";
    const res = await api("PUT", `/api/branches/${branch}/config/sections/${section}`,
      {text: $("#text").value, base: current.latest.version, comment: $("#comment").value});
    if (!res.ok) {
      const e = (res.data && res.data.error) || {};
      $("#error").textContent = e.key ? `配置有误 ${e.key}: ${e.problem}` : errorText(res);
      return;
    }
    delete drafts[section];
    $("#comment").value = "";
    toast(`已校验并保存为 v${res.data.version} Saved as version ${res.data.version}`);
    load();
  });
  $("#import-save").addEventListener("click", async () => {
    $("#import-error").textContent = "";
    const res = await api("POST", `/api/branches/${branch}/config/import`,
      {text: $("#import-text").value, comment: "导入 imported"});
    if (!res.ok) {
      const e = (res.data && res.data.error) || {};
      $("#import-error").textContent = e.key ? `${e.key}: ${e.problem}` : errorText(res);
      return;
    }
    toast(`已导入为 v${res.data.version}`);
    load();
  });

  async function loadVersions() {
    const res = await api("GET", `/api/branches/${branch}/config/versions`);
    if (!res.ok) return;
    $("#versions").replaceChildren(el("thead", {}, el("tr", {}, ...["版本", "修改", "说明",
      "作者", "时间", ""].map((h) => el("th", {}, h)))), el("tbody", {}, ...res.data.versions.map((v) =>
      el("tr", {"data-version": v.version}, el("td", {}, "v" + v.version), el("td", {}, v.section),
        el("td", {}, v.comment), el("td", {}, v.author), el("td", {}, when(v.created_at)),
        el("td", {}, boot.can_edit ? el("button", {type: "button", class: "primary",
          "data-push": v.version, onclick: () => push(v.version)}, "下发 Push") : "")))));
  }
  async function push(version) {
    const res = await api("POST", `/api/branches/${branch}/config/push`, {version});
    if (!res.ok) { toast(errorText(res), true); return; }
    toast(`v${version} 已下发,等待网点确认 Sent; waiting for the branch`);
    refreshPushes();
  }
  function drawPushes() {
    const state = {applied: ["已生效 applied", "ok"], refused: ["被拒绝 refused", "bad"],
      pending: ["待确认 pending", "warn"], not_run: ["未执行,请重新下发 not run, push again", "warn"]};
    $("#pushes").replaceChildren(el("thead", {}, el("tr", {}, ...["版本", "下发", "人员", "结果",
      "网点配置散列 / 原因"].map((h) => el("th", {}, h)))), el("tbody", {}, ...current.pushes.map((p) => {
      const [t, c] = state[p.state];
      return el("tr", {"data-push-id": p.id, "data-state": p.state}, el("td", {}, "v" + p.version),
        el("td", {}, when(p.sent_at)), el("td", {}, p.sent_by),
        el("td", {}, el("span", {class: "tag " + c}, t)),
        el("td", {}, p.error ? p.error.message || p.error.code : p.config_version || ""));
    })));
    clearTimeout(timer);
    if (current.pushes.some((p) => p.state === "pending")) timer = setTimeout(refreshPushes, 2000);
  }
  async function refreshPushes() {
    const res = await api("GET", `/api/branches/${branch}/config`);
    if (res.ok) { current.pushes = res.data.pushes; drawPushes(); }
  }
  /* --- kiosk media files ------------------------------------------------------------- */
  async function loadMedia() {
    const res = await api("GET", `/api/branches/${branch}/media`);
    if (!res.ok) return;
    $("#media").replaceChildren(el("thead", {}, el("tr", {}, ...["文件 File", "大小 Size",
      "来自 From", ""].map((h) => el("th", {}, h)))), el("tbody", {}, ...res.data.files.map((f) =>
      el("tr", {"data-media": f.name}, el("td", {}, f.name),
        el("td", {class: "n"}, f.size < 1024 ? f.size + " B" : Math.round(f.size / 1024) + " KB"),
        el("td", {}, f.org),
        el("td", {}, boot.can_edit ? el("button", {type: "button", class: "danger", onclick: async () => {
          const r = await api("DELETE", `/api/orgs/${f.org}/media/${encodeURIComponent(f.name)}`);
          toast(r.ok ? "已删除 Deleted" : errorText(r), !r.ok);
          loadMedia();
        }}, "删除") : "")))));
    const sel = $("#media-org"), chosen = sel.value;
    sel.replaceChildren(...[branch.slice(0, 4), branch.slice(0, 6), branch]
      .filter((c, i, all) => all.indexOf(c) === i && c.startsWith(boot.scope))
      .map((c) => el("option", {value: c, selected: c === (chosen || branch)},
        c === branch ? "本网点 " + c : "全辖 " + c)));
    for (const id of ["#media-upload", "#media-push", "#media-file", "#media-org"]) {
      $(id).disabled = !boot.can_edit;
    }
  }
  $("#media-upload").addEventListener("click", async () => {
    const file = $("#media-file").files[0];
    if (!file) return;
    const r = await fetch(`/api/orgs/${$("#media-org").value}/media/${encodeURIComponent(file.name)}`,
      {method: "PUT", body: file, credentials: "same-origin",
        headers: {"X-CSRF-Token": boot.csrf, "Content-Type": "application/octet-stream"}});
    let data = {};
    try { data = await r.json(); } catch (e) { data = {}; }
    toast(r.ok ? "已上传 Uploaded " + file.name : errorText({status: r.status, data}), !r.ok);
    loadMedia();
  });
  $("#media-push").addEventListener("click", async () => {
    const res = await api("POST", `/api/branches/${branch}/media/push`);
    if (!res.ok) { toast(errorText(res), true); return; }
    const sent = res.data.sent;
    toast(`已下发 ${sent.length} 个文件,等待网点确认 Sent ${sent.length} files`);
    for (let i = 0; i < 30 && sent.length; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      const answers = await Promise.all(sent.map((s) => api("GET", `/api/branches/${branch}/replies/${s.id}`)));
      if (answers.every((a) => a.ok)) {
        const bad = answers.filter((a) => !a.data.ok);
        toast(bad.length ? "网点拒绝 Refused: " + ((bad[0].data.error || {}).message || "")
          : `网点已确认 ${sent.length} 个文件 Confirmed`, bad.length > 0);
        return;
      }
    }
    toast("网点未确认(可能离线) No answer from the branch (offline?)", true);
  });

  start();
})();
