/* Shared by the centre's pages: the boot data, API calls with the CSRF token, formatting,
 * a tiny element builder. Plain ES2017, no libraries, nothing from the network. */
"use strict";

const PD = (() => {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const $ = (sel, root) => (root || document).querySelector(sel);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  /** Call the centre's API; resolves to {ok, status, data}, never rejects. */
  async function api(method, path, body) {
    const headers = {"Accept": "application/json"};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && boot.csrf) headers["X-CSRF-Token"] = boot.csrf;
    try {
      const r = await fetch(path, {method, headers, credentials: "same-origin", cache: "no-store",
        body: body === undefined ? undefined : JSON.stringify(body)});
      let data = {};
      try { data = await r.json(); } catch (e) { data = {}; }
      if (r.status === 401 && !path.startsWith("/api/auth/login")) {
        location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      }
      return {ok: r.ok, status: r.status, data: data || {}};
    } catch (e) {
      return {ok: false, status: 0, data: {error: {code: "offline",
        message: "无法连接监控中心,请稍后再试。", message_en: "Cannot reach the centre."}}};
    }
  }
  /** What went wrong, in words: the API's message (Chinese, then English); an answer without
   * one (a proxy's 502, a framework's 404) in words for its status, never a bare code. */
  function errorText(res) {
    const e = (res.data && res.data.error) || {};
    const [zh, en] = e.message ? [e.message, e.message_en] : statusWords(res);
    return en && en !== zh ? zh + "\n" + en : zh;
  }
  const STATUS_WORDS = {
    400: ["请求有误,请检查后再试。", "The request was not understood."],
    401: ["请先登录。", "Please log in."],
    403: ["没有权限进行此操作。", "You may not do this."],
    404: ["找不到要访问的内容。", "Not found."],
    409: ["内容已被他人修改,请刷新后再试。", "Changed meanwhile; reload and try again."],
    413: ["提交的内容太大。", "Too large."],
    422: ["填写的内容有误,请检查后再试。", "Something entered is not valid; please check it."],
    429: ["操作太频繁,请稍后再试。", "Too many requests; please wait a moment."],
  };
  function statusWords(res) {
    const detail = res.data && res.data.detail;
    const said = typeof detail === "string" ? detail
      : Array.isArray(detail) && detail[0] && detail[0].msg ? String(detail[0].msg) : "";
    const [zh, en] = STATUS_WORDS[res.status] || (res.status >= 500
      ? ["服务暂时不可用,请稍后再试。", "The service is unavailable; please try again later."]
      : ["操作未成功,请稍后再试。", "That did not work; please try again."]);
    return [zh, said ? `${en} (${said})` : en];
  }

  const two = (n) => String(n).padStart(2, "0");
  /** Seconds as "3分05秒" or "1时02分". */
  function dur(s) {
    if (s === null || s === undefined || isNaN(s)) return "—";
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + "秒";
    if (s < 3600) return Math.floor(s / 60) + "分" + two(s % 60) + "秒";
    return Math.floor(s / 3600) + "时" + two(Math.floor(s / 60) % 60) + "分";
  }
  /** How long ago (seconds) in words. */
  function ago(s) {
    if (s === null || s === undefined) return "从未 never";
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + " 秒前";
    if (s < 3600) return Math.floor(s / 60) + " 分钟前";
    if (s < 86400) return Math.floor(s / 3600) + " 小时前";
    return Math.floor(s / 86400) + " 天前";
  }
  // Every time on these pages is the province's wall time (boot.zone: the reports' zone,
  // report_settings.timezone), whatever zone the analyst's PC is set to.
  const zoned = (() => {
    const opts = {hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit"};
    try { return new Intl.DateTimeFormat("en-GB", Object.assign({timeZone: boot.zone}, opts)); }
    catch (e) { return new Intl.DateTimeFormat("en-GB", opts); }  // a zone this browser lacks
  })();
  /** Epoch seconds or an ISO string as the province's wall clock: {year, month, day, hour,
   * minute, second}, each a zero-padded string. */
  function wall(t) {
    const d = new Date(typeof t === "string" ? Date.parse(t) : t * 1000);
    const p = {};
    for (const {type, value} of zoned.formatToParts(d)) p[type] = value;
    return p;
  }
  /** "YYYY-MM-DD" in the province: today's date by default (reports, day pickers). */
  function day(t) {
    const p = wall(t === undefined ? Date.now() / 1000 : t);
    return p.year + "-" + p.month + "-" + p.day;
  }
  /** Epoch seconds or an ISO string as "MM-DD HH:MM:SS" (only the time today), in the
   * province's zone. */
  function when(t) {
    if (!t) return "—";
    const p = wall(t), hms = p.hour + ":" + p.minute + ":" + p.second;
    return day(t) === day() ? hms : p.month + "-" + p.day + " " + hms;
  }
  function num(n) { return n === null || n === undefined ? "—" : String(n); }

  /* --- plain words for codes (issue 17) --------------------------------------------------- */
  /** What an alert kind means, as a sentence (central/alerts: the rules and their kinds). */
  const ALERT_KINDS = {
    waiting_over: ["等待人数超过阈值", "Too many customers waiting"],
    long_wait: ["有客户等待时间过长", "A customer has waited too long"],
    bad_rating: ["客户给出差评", "A customer gave a bad rating"],
    device_fault: ["设备故障", "A device is faulty"],
    offline: ["网点离线", "The branch is offline"],
    no_data: ["网点昨日没有上传数据", "The branch sent no data for yesterday"],
    totals_mismatch: ["昨日总量缺失或与流水不一致", "Yesterday's totals are missing or disagree"],
    branch_flooding: ["网点消息过多,已限流", "The branch sends too many messages"],
  };
  function alertKind(kind) {
    const w = ALERT_KINDS[kind];
    return w ? w[0] + " " + w[1] : kind || "";
  }
  const BUS_DEVICES = {keypad: ["呼叫器", "keypad"], display: ["窗口屏", "window display"],
    evaluator: ["评价器", "evaluator"]};
  const BOX_DEVICES = {
    rs485: ["窗口设备总线", "Window devices' line"],
    printer: ["取号机打印机", "Ticket printer"],
    audio: ["语音播报", "Voice"],
    hall_display: ["综合屏", "Hall display"],
    uplink: ["上行链路", "Uplink"],
    gpio: ["取号按键", "Ticket buttons"],
    watchdog: ["看门狗", "Watchdog"],
    disk: ["存储空间", "Disk"],
    screens: ["屏幕页面", "Screens"],
    config: ["配置", "Configuration"],
    update: ["软件更新", "Update"],
    appointments: ["预约兑号", "Appointments"],
    kiosk_relay: ["取号机连接", "Kiosk link"],
    card_reader: ["读卡器", "Card reader"],
  };
  /** A box's device health name in words: "evaluator.3" is "3号窗口评价器" when the
   * branch's config binds evaluator address 3 to window 3 (windows[i].devices). `lang`
   * "zh" or "en" gives one language, else both. */
  function deviceName(name, windows, lang) {
    const words = deviceWords(name || "", windows);
    return lang === "zh" ? words[0] : lang === "en" || words[0] === words[1] ? words[1]
      : words.join(" ");
  }
  /** A message naming a bus device ("evaluator.3") names it in words instead (by its
   * window when the branch's `windows` are given). */
  function plain(text, lang, windows) {
    return (text || "").replace(/\b(keypad|display|evaluator)\.\d+\b/g, (d) => deviceName(d, windows, lang));
  }
  function deviceWords(name, windows) {
    const bus = /^(keypad|display|evaluator)\.(\d+)$/.exec(name);
    if (bus) {
      const [zh, en] = BUS_DEVICES[bus[1]], address = Number(bus[2]);
      const w = (windows || []).find((x) => x.devices && x.devices[bus[1]] === address);
      return w ? [`${w.number}号窗口${zh}`, `Window ${w.number} ${en}`]
        : [`${zh}(地址${address})`, `${en} at address ${address}`];
    }
    const [head, ...rest] = name.split(".");
    const words = BOX_DEVICES[head], more = rest.length ? " " + rest.join(".") : "";
    return words ? [words[0] + more, words[1] + more] : [name, name];
  }

  let toastTimer = null;
  function toast(text, bad) {
    const t = $("#toast");
    t.textContent = text;
    t.classList.toggle("bad", !!bad);
    t.classList.remove("hidden");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => t.classList.add("hidden"), bad ? 8000 : 4000);
  }

  /* --- org pickers and names: only the nodes on screen are loaded ------------------------
   * A province holds 10,000 branches: no page loads the whole tree. A picker starts with
   * the user's own node and the level below it (or the first branches, for a branch
   * picker) and searches as one types (code digits or part of a name); names are looked
   * up for the codes a page shows. */
  const orgQuery = (path, params) => api("GET", path + "?" + new URLSearchParams(params));
  const orgLabel = (o) => "\u00a0\u00a0".repeat(o.code.length <= 4 ? 0 : o.code.length <= 6 ? 1 : 2) + o.name;
  async function startingOrgs(kind) {
    if (kind) {
      const res = await orgQuery("/api/orgs/search", {q: "", kind});
      return res.ok ? res.data.orgs : [];
    }
    const roots = await orgQuery("/api/orgs/children", {});
    if (!roots.ok) return [];
    const out = [];
    for (const root of roots.data.orgs) {
      out.push(root);
      const below = root.has_children ? await orgQuery("/api/orgs/children", {parent: root.code}) : null;
      if (below && below.ok) out.push(...below.data.orgs);
    }
    return out;
  }
  function fillOrgs(select, orgs, selected, more) {
    const chosen = orgs.find((o) => o.code === selected);
    const kept = !chosen && selected ? Array.from(select.options).find((o) => o.value === selected) : null;
    select.replaceChildren(...(kept ? [kept] : []), ...orgs.map((o) => el("option",
      {value: o.code, selected: o.code === selected, title: o.code, "data-kind": o.kind}, orgLabel(o))));
    if (selected) select.value = selected;
    if (more) select.append(el("option", {disabled: true, value: ""}, "… 更多请输入搜索 type to find more"));
  }

  /** An org <select> made a picker: the starting nodes, ``selected`` among them, and a
   * search box before it. ``kind`` keeps one kind, ``registered`` the registered nodes.
   * Returns the starting nodes. */
  async function orgOptions(select, selected, {kind = "", registered = false} = {}) {
    const keep = (list) => list.filter((o) => !registered || o.registered);
    let start = keep(await startingOrgs(kind));
    if (selected && !start.some((o) => o.code === selected)) {
      const named = (await orgNames([selected])).get(selected);
      if (named) start = [named, ...start];
    }
    fillOrgs(select, start, selected || (start[0] && start[0].code));
    if (!select.previousElementSibling || !select.previousElementSibling.classList.contains("org-search")) {
      let timer = null, asked = 0;
      const box = el("input", {type: "search", class: "org-search", maxlength: 40,
        "aria-label": "搜索机构 Search orgs", placeholder: "搜索 代码或名称 Search code or name"});
      box.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(async () => {
          const q = box.value.trim(), mine = ++asked;
          if (!q) { fillOrgs(select, start, select.value); return; }
          const res = await orgQuery("/api/orgs/search", kind ? {q, kind} : {q});
          if (mine !== asked) return;  // a later keystroke's answer counts, not this one
          if (!res.ok) { box.setCustomValidity(errorText(res)); box.reportValidity(); return; }
          box.setCustomValidity("");
          fillOrgs(select, keep(res.data.orgs), select.value, res.data.more);
        }, 250);  // after a pause in typing, not at every key
      });
      select.before(box);
    }
    return start;
  }

  /** code -> node for ``codes`` (those the user sees), looked up once a page each. */
  const known = new Map();
  async function orgNames(codes) {
    const wanted = [...new Set(codes || [])].filter((c) => c && /^\d{4,16}$/.test(c) && !known.has(c));
    for (let i = 0; i < wanted.length; i += 500) {
      const chunk = wanted.slice(i, i + 500);
      const res = await orgQuery("/api/orgs/names", {codes: chunk.join(",")});
      if (!res.ok) break;
      for (const c of chunk) known.set(c, null);  // asked: out of scope or unknown stays a code
      for (const o of res.data.orgs) known.set(o.code, o);
    }
    return new Map([...known].filter(([, o]) => o));
  }
  /** code -> name of ``codes``, for :func:`branchTag`. */
  async function orgNameMap(codes) {
    return new Map([...(await orgNames(codes))].map(([c, o]) => [c, o.name]));
  }
  /** A branch by its name, its code on hover (the code alone when its name is unknown). */
  function branchTag(code, known) {
    const name = known && known.get(code);
    return el("span", {class: "branch", title: code || null, "data-code": code || null}, name || code || "");
  }

  const out = $("#logout");
  if (out) out.addEventListener("click", async () => {
    await api("POST", "/api/auth/logout");
    location.href = "/login";
  });

  const account = $("#account");
  if (account) {
    account.addEventListener("click", () => {
      $("#pw-error").textContent = "";
      $("#password-form").reset();
      $("#password-dialog").showModal();
    });
    $("#pw-cancel").addEventListener("click", () => $("#password-dialog").close());
    $("#password-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const res = await api("POST", "/api/auth/password",
        {old: $("#pw-old").value, new: $("#pw-new").value});
      if (!res.ok) { $("#pw-error").textContent = errorText(res); return; }
      $("#password-dialog").close();
      toast("密码已修改 Password changed");
    });
  }

  /** A short tone for a new alert (WebAudio, no sound file). A browser may keep audio
   * suspended until the user has clicked on the page; it is resumed on each beep. */
  let audio = null;
  function beep() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    audio = audio || new Ctx();
    if (audio.state === "suspended") audio.resume();
    const o = audio.createOscillator(), g = audio.createGain();
    o.frequency.value = 880; g.gain.value = 0.15;
    o.connect(g); g.connect(audio.destination); o.start(); o.stop(audio.currentTime + 0.35);
  }

  return {boot, $, el, api, errorText, dur, ago, when, day, num, toast, orgOptions, beep,
    alertKind, deviceName, plain, orgNames, orgNameMap, branchTag};
})();
