// Customer pages of the centre (H1 branch status, H2 appointments, H3 remote tickets,
// C3 remote rating). One page; the path says what to draw. Data from /api/public/…;
// the sign-in token lives in localStorage and goes as a bearer header (no cookie, no CSRF).
"use strict";
(() => {
  const KEY = "paidui_customer_token";
  const view = document.getElementById("view");
  let timer = null;

  // --- helpers ---------------------------------------------------------------------------
  function el(tag, props = {}, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat()) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  }
  const token = () => localStorage.getItem(KEY);
  async function api(method, path, body) {
    const headers = {"Content-Type": "application/json"};
    if (token()) headers.Authorization = `Bearer ${token()}`;
    try {
      const r = await fetch(path, {method, headers, body: body ? JSON.stringify(body) : undefined});
      const data = await r.json().catch(() => ({}));
      if (r.status === 401 && data.error && data.error.code === "not_logged_in") localStorage.removeItem(KEY);
      return {ok: r.ok, status: r.status, data};
    } catch (err) {
      return {ok: false, status: 0, data: {error: {code: "network", message: "网络不可用,请稍后再试。"}}};
    }
  }
  // The API's own message; an answer without one (a proxy's 502, a framework's 404) in words
  // for its status, never a bare "出错了(422)".
  const errText = (res) => (res.data && res.data.error && res.data.error.message) || (
    res.status === 429 ? "操作太频繁,请稍后再试。" : res.status === 404 ? "找不到要访问的内容,请返回重试。"
      : res.status === 0 || res.status >= 500 ? "服务暂时不可用,请稍后再试。" : "提交的内容有误,请检查后再试。");
  const msg = (text, kind = "err") => el("div", {class: `msg ${kind}`, role: kind === "err" ? "alert" : "status", text});
  function draw(...nodes) { view.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined)); }
  function go(path) { history.pushState(null, "", path); route(); }
  function link(path, text, cls) { return el("a", {href: path, class: cls, text, onclick: (ev) => { ev.preventDefault(); go(path); }}); }
  function needLogin() { go(`/m/login?next=${encodeURIComponent(location.pathname)}`); }
  function ahead(n, minutes) {
    return n === 0 ? "马上就到您了,请留意叫号" : `您前面还有 ${n} 位客户在等待,约 ${minutes} 分钟`;
  }
  const STATE = {waiting: "等待中", called: "请到窗口办理", finished: "已办理", no_show: "已过号",
    not_served: "未办理", held: "暂缓办理", unknown: "暂无该号信息", expired: "非今日号票",
    booked: "已预约", cancelled: "已取消", redeemed: "已取号", missed: "已过期"};

  // --- branches (H1) ---------------------------------------------------------------------------
  async function home() {
    const res = await api("GET", "/api/public/branches");
    const list = el("div", {id: "branches"});
    const near = el("button", {class: "ghost", id: "near", text: "附近排队最少的网点", onclick: findNear});
    draw(el("h1", {text: "网点排队查询"}), near, list);
    if (!res.ok) return list.append(msg(errText(res)));
    if (!res.data.branches.length) list.append(el("p", {class: "muted", text: "暂无网点信息。"}));
    for (const b of res.data.branches) list.append(branchCard(b));
  }
  function branchCard(b, extra) {
    const best = b.queues.filter((q) => !q.paused).sort((x, y) => x.wait_minutes - y.wait_minutes)[0];
    return el("div", {class: "card branch", "data-branch": b.branch},
      el("div", {class: "row"}, link(`/m/b/${b.branch}`, b.name), el("span", {class: `tag ${b.online ? "ok" : "off"}`, text: b.online ? "营业中" : "暂时离线"})),
      el("div", {class: "muted", text: `等待 ${b.waiting_total} 人` + (best ? ` · ${best.name}约 ${best.wait_minutes} 分钟` : "") + (extra || "")}));
  }
  function findNear() {
    if (!navigator.geolocation) return view.append(msg("无法获取位置。"));
    navigator.geolocation.getCurrentPosition(async (pos) => {
      const {latitude: lat, longitude: lon} = pos.coords;
      const res = await api("GET", `/api/public/nearby?lat=${lat}&lon=${lon}`);
      const list = document.getElementById("branches");
      list.replaceChildren(el("h2", {text: "附近排队最少"}));
      if (!res.ok) return list.append(msg(errText(res)));
      for (const b of res.data.branches) list.append(branchCard(b, ` · ${b.distance_km} 公里`));
    }, () => view.append(msg("未获得位置授权,显示全部网点。")));
  }
  async function branch(code) {
    const res = await api("GET", `/api/public/branches/${code}`);
    if (!res.ok) return draw(msg(errText(res)));
    const b = res.data;
    const rows = b.queues.map((q) => el("tr", {"data-queue": q.id},
      el("td", {text: q.name}), el("td", {class: "n", text: q.paused ? "暂停" : `${q.waiting} 人`}),
      el("td", {class: "n", text: q.paused ? "—" : q.wait_minutes ? `约 ${q.wait_minutes} 分` : "无需等待"}),
      el("td", {}, q.paused || !b.online ? null : el("button", {class: "ghost take", text: "取号", onclick: () => take(b.branch, q.id)}))));
    const windows = b.windows.filter((w) => w.state !== "closed").map((w) =>
      el("tr", {}, el("td", {text: w.name || `${w.number}号窗口`}), el("td", {class: "n", text: w.current || (w.state === "paused" ? "暂停服务" : "—")})));
    draw(el("h1", {text: b.name}),
      el("div", {class: "muted", text: `${b.online ? "营业中" : "暂时离线"} · 等待 ${b.waiting_total} 人` + (b.updated_at ? ` · 更新于 ${b.updated_at.slice(11, 16)}` : "")}),
      el("div", {class: "card"}, el("table", {}, el("tr", {}, el("th", {text: "业务"}), el("th", {text: "等待"}), el("th", {text: "预计"}), el("th", {})), rows)),
      windows.length ? el("div", {class: "card"}, el("table", {}, el("tr", {}, el("th", {text: "窗口"}), el("th", {text: "当前号码"})), windows)) : null,
      el("div", {class: "row"}, link(`/m/book/${b.branch}`, "预约登记", "btn"), el("span", {class: "muted", text: "预约客户优先办理"})),
      el("div", {id: "out"}));
    clearInterval(timer);
    timer = setInterval(() => location.pathname === `/m/b/${code}` && refreshBranch(code), 10000);
  }
  async function refreshBranch(code) { if (!document.querySelector("#out .msg")) await branch(code); }
  async function take(code, queue) {
    if (!token()) return needLogin();
    const out = document.getElementById("out");
    out.replaceChildren(el("p", {class: "muted", text: "正在向网点取号…"}));
    const res = await api("POST", "/api/public/tickets", {branch: code, queue});
    if (!res.ok) {
      if (res.data.error && res.data.error.code === "not_registered") return go(`/m/login?next=${encodeURIComponent(location.pathname)}`);
      return out.replaceChildren(msg(errText(res)));
    }
    localStorage.setItem(`paidui_ticket_${res.data.day}_${code}`, res.data.token);
    go(`/m/t/${res.data.token}`);
  }

  // --- a ticket: remote (token) or printed (QR) ------------------------------------------------
  async function ticket(path) {
    const res = await api("GET", path);
    if (!res.ok) return draw(msg(errText(res)));
    const t = {...res.data, token_path: path.startsWith("/api/public/tickets/")};
    const state = STATE[t.state] || t.state;
    const parts = [el("h1", {text: t.branch_name || t.branch}),
      el("div", {class: "card", id: "ticket"},
        el("div", {class: "muted", text: t.queue_name || ""}),
        el("div", {class: "big", id: "number", text: t.number || "—"}),
        el("div", {class: "wait", id: "ahead", text: t.state === "waiting" && t.ahead !== null && t.ahead !== undefined ? ahead(t.ahead, t.wait_minutes) : state}),
        t.state === "called" && t.window ? el("div", {class: "wait", text: `请到 ${t.window} 号窗口`}) : null,
        t.live === false ? el("div", {class: "muted", text: "网点暂时无法连接,显示的是最近一次的信息。"}) : null)];
    if (t.token_path && ["waiting", "called", "held"].includes(t.state)) parts.push(link(`${location.pathname}/form`, "填写预填单", "btn ghost"));
    if (t.can_rate) parts.push(rating(t.rating_levels, (score) => api("POST", `${path}/rate`, {score})));
    else if (t.rated) parts.push(msg("谢谢您对我们工作的支持,再见", "ok"));
    draw(...parts);
    clearInterval(timer);
    if (["waiting", "called", "held", "unknown"].includes(t.state)) {
      const here = location.pathname;
      timer = setInterval(() => location.pathname === here && ticket(path), 5000);
    }
  }
  // --- a pre-filled form (预填单, I2) for a remote ticket or a redeemed booking: the teller
  // sees it when the number is called ---------------------------------------------------------
  async function ticketForm(tok) {
    const t = await api("GET", `/api/public/tickets/${tok}`);
    if (!t.ok) return draw(msg(errText(t)));
    return fillForm({number: t.data.number, queue: t.data.queue, post: `/api/public/tickets/${tok}/form`, back: `/m/t/${tok}`});
  }
  // a booking's form: kept by the centre until the booking has its number (central/booking_forms.py)
  const FORM_STATE = {waiting: "已保存,取号后发送至网点", sending: "正在发送至网点", delivered: "已发送至网点",
    refused: "网点未接收,请到柜台填写", expired: "未使用", blanked: "已清除"};
  async function bookingForm(id) {
    const b = await api("GET", `/api/public/bookings/${id}`);
    if (!b.ok) return b.status === 401 ? needLogin() : draw(msg(errText(b)));
    return fillForm({number: b.data.ticket_number || "预约", queue: b.data.queue, post: `/api/public/bookings/${id}/form`, back: `/m/me/${id}`});
  }
  async function fillForm(to) {
    const res = await api("GET", `/api/public/forms?queue=${encodeURIComponent(to.queue)}`);
    const forms = res.ok ? res.data.forms : [];
    const back = link(to.back, "返回", "btn ghost");
    if (!forms.length) return draw(el("h1", {text: "预填单"}), msg("该业务无需填写预填单。", "ok"), back);
    const out = el("div", {id: "out"});
    const pick = (f) => {
      const fields = f.fields.map((x) => el("label", {}, `${x.label}${x.required ? " *" : ""}`,
        x.type === "choice" ? el("select", {name: x.name}, el("option", {value: "", text: "请选择"}), x.choices.map((c) => el("option", {value: c, text: c})))
          : el("input", {name: x.name, maxlength: x.max_len, required: x.required, autocomplete: "off",
            inputmode: {amount: "decimal", account: "numeric", phone: "tel"}[x.type] || null})));
      const form = el("form", {class: "card", id: "form", onsubmit: async (ev) => {
        ev.preventDefault();
        const values = {};
        form.querySelectorAll("input, select").forEach((n) => { if (n.value.trim()) values[n.name] = n.value; });
        const sent = await api("POST", to.post, {form: f.id, fields: values});
        if (!sent.ok) return out.replaceChildren(msg(errText(sent)));
        form.replaceChildren(el("h2", {text: f.title}), ...sent.data.fields.map((x) => el("div", {text: `${x.label}:${x.value}`})));
        out.replaceChildren(msg(sent.data.state === "waiting" ? sent.data.message : `预填单已提交,${to.number} 叫号时柜员可直接查看。`, "ok"));
      }}, el("h2", {text: f.title}), fields, el("button", {type: "submit", text: "提交"}));
      draw(el("h1", {text: `${to.number} 预填单`}), form, out, back);
    };
    if (forms.length === 1) return pick(forms[0]);
    draw(el("h1", {text: "请选择预填单"}), ...forms.map((f) => el("button", {class: "ghost", text: f.title, onclick: () => pick(f)})), back);
  }

  function rating(levels, send) {
    const box = el("div", {class: "card", id: "rate"}, el("h2", {text: "请对本次服务进行评价"}));
    const row = el("div", {class: "stars"});
    for (const l of levels) {
      row.append(el("button", {class: "ghost", "data-score": l.score, text: l.name, onclick: async () => {
        row.querySelectorAll("button").forEach((b) => { b.disabled = true; });
        const res = await send(l.score);
        box.replaceChildren(res.ok ? msg("谢谢您对我们工作的支持,再见", "ok") : msg(errText(res)));
      }}));
    }
    box.append(row);
    return box;
  }

  // --- signing in ----------------------------------------------------------------------------
  function login() {
    const next = new URLSearchParams(location.search).get("next") || "/m/me";
    const phone = el("input", {id: "phone", type: "tel", inputmode: "numeric", autocomplete: "tel", placeholder: "11位手机号",
      maxlength: 20, pattern: "[+0-9 \\-]{11,20}"});  // limits: the API's (central/customers.py)
    const code = el("input", {id: "code", inputmode: "numeric", autocomplete: "one-time-code", placeholder: "6位验证码",
      maxlength: 8, pattern: "[0-9]{4,8}"});
    const out = el("div");
    const send = el("button", {class: "ghost", id: "send-code", text: "获取验证码", onclick: async () => {
      const res = await api("POST", "/api/public/login/code", {phone: phone.value});
      out.replaceChildren(res.ok ? msg(`验证码已发送至 ${res.data.to}`, "ok") : msg(errText(res)));
    }});
    const enter = el("button", {id: "sign-in", text: "登录", onclick: async () => {
      const res = await api("POST", "/api/public/login", {phone: phone.value, code: code.value});
      if (!res.ok) return out.replaceChildren(msg(errText(res)));
      localStorage.setItem(KEY, res.data.token);
      navState();
      if (res.data.registered) go(next); else register(next);
    }});
    draw(el("h1", {text: "登录"}), el("label", {for: "phone", text: "手机号码"}), phone,
      el("div", {class: "row"}, send), el("label", {for: "code", text: "验证码"}), code,
      el("p", {}, enter), out);
  }
  function register(next) {
    const name = el("input", {id: "name", autocomplete: "name", placeholder: "姓名", maxlength: 40});
    const gender = el("select", {id: "gender"}, el("option", {value: "", text: "按身份证号"}),
      el("option", {value: "M", text: "男"}), el("option", {value: "F", text: "女"}));
    const id = el("input", {id: "id-number", autocomplete: "off", placeholder: "18位身份证号码", maxlength: 24,
      pattern: "[0-9]{17}[0-9Xx]"});
    const out = el("div");
    draw(el("h1", {text: "用户注册"}),
      el("p", {class: "muted", text: "预约需登记办理人信息。证件号仅用于核验与到网点刷证兑号,页面只显示掩码。"}),
      el("label", {for: "name", text: "姓名"}), name, el("label", {for: "gender", text: "性别"}), gender,
      el("label", {for: "id-number", text: "身份证号码"}), id,
      el("p", {}, el("button", {id: "register", text: "注册", onclick: async () => {
        const res = await api("POST", "/api/public/register", {name: name.value, gender: gender.value, id_number: id.value});
        if (!res.ok) return out.replaceChildren(msg(errText(res)));
        go(next);
      }})), out);
  }

  // --- booking (H2) ------------------------------------------------------------------------------
  async function book(code) {
    if (!token()) return needLogin();
    const me = await api("GET", "/api/public/me");
    if (!me.ok) return needLogin();
    if (!me.data.registered) return register(location.pathname);
    const day = el("select", {id: "day"});  // the centre's days: its clock, not the phone's
    const queue = el("select", {id: "queue"});
    const grid = el("div", {class: "grid", id: "slots"});
    const out = el("div", {id: "out"});
    let chosen = null;
    let tries = 0;
    const submit = el("button", {id: "book", text: "确认预约", disabled: true, onclick: async () => {
      const res = await api("POST", "/api/public/bookings", {branch: code, queue: queue.value, day: day.value, slot: chosen});
      if (!res.ok) return out.replaceChildren(msg(errText(res)));
      go(`/m/me/${res.data.id}`);
    }});
    async function load() {
      const res = await api("GET", `/api/public/branches/${code}/bookable` + (day.value ? `?day=${day.value}` : ""));
      if (!res.ok) {
        out.replaceChildren(msg(errText(res)));
        // A branch that has just come online has not yet told the centre what it offers:
        // look again shortly, as long as this page is still the one shown.
        const code_ = res.data && res.data.error && res.data.error.code;
        if (code_ === "unknown_branch" && tries++ < 20) setTimeout(() => { if (title.isConnected) load(); }, 2000);
        return;
      }
      out.replaceChildren();
      if (!day.options.length) {
        day.replaceChildren(...res.data.days.map((d, i) => el("option", {value: d, text: i === 0 ? `${d} 今天` : i === 1 ? `${d} 明天` : d})));
      }
      title.textContent = `预约登记 · ${res.data.name}`;
      const keep = queue.value;
      queue.replaceChildren(...res.data.queues.map((q) => el("option", {value: q.id, text: q.name})));
      if (keep) queue.value = keep;
      const q = res.data.queues.find((x) => x.id === queue.value) || res.data.queues[0];
      chosen = null; submit.disabled = true;
      grid.replaceChildren(...(q ? q.slots : []).map((s) => el("button", {class: "slot", "data-slot": s.slot, disabled: !s.open,
        onclick: (ev) => { chosen = s.slot; grid.querySelectorAll(".slot").forEach((b) => b.classList.remove("on")); ev.currentTarget.classList.add("on"); submit.disabled = false; }},
        s.label, el("small", {text: s.open ? `余 ${s.left}` : s.why === "slot_past" ? "已过" : s.left === 0 && !s.why ? "约满" : "不可约"}))));
    }
    const title = el("h1", {text: "预约登记"});
    day.addEventListener("change", load);
    queue.addEventListener("change", load);
    draw(title, el("label", {for: "day", text: "日期"}), day, el("label", {for: "queue", text: "业务"}), queue,
      el("label", {text: "时段"}), grid, el("p", {}, submit), out);
    await load();
  }

  // --- my bookings ---------------------------------------------------------------------------
  async function mine() {
    if (!token()) return needLogin();
    const res = await api("GET", "/api/public/bookings");
    if (!res.ok) {
      if (res.data.error && res.data.error.code === "not_registered") return register("/m/me");
      if (res.status === 401) return needLogin();
      return draw(msg(errText(res)));
    }
    const items = res.data.bookings.map((b) => el("div", {class: "card booking", "data-id": b.id},
      el("div", {class: "row"}, link(`/m/me/${b.id}`, `${b.branch_name} · ${b.queue_name}`), el("span", {class: "tag", text: STATE[b.state] || b.state})),
      el("div", {class: "muted", text: `${b.day} ${b.slot_label}` + (b.state === "booked" ? ` · 预约码 ${b.code}` : "") + (b.ticket_number ? ` · 号码 ${b.ticket_number}` : "")})));
    draw(el("h1", {text: "我的预约"}), items.length ? el("div", {}, items) : el("p", {class: "muted", text: "暂无预约。"}),
      el("p", {}, link("/m", "去预约", "btn")), el("p", {}, el("button", {class: "ghost", text: "退出登录", onclick: async () => {
        await api("POST", "/api/public/logout"); localStorage.removeItem(KEY); navState(); go("/m");
      }})));
  }
  async function oneBooking(id) {
    const res = await api("GET", `/api/public/bookings/${id}`);
    if (!res.ok) return res.status === 401 ? needLogin() : draw(msg(errText(res)));
    const b = res.data;
    const out = el("div");
    const qr = el("div", {class: "qr"});
    qr.innerHTML = b.qr_svg;  // drawn by the centre from the booking's own payload
    const parts = [el("h1", {text: `${b.branch_name} · ${b.queue_name}`}),
      el("div", {class: "card"},
        el("div", {class: "muted", text: `${b.day} ${b.slot_label} · ${STATE[b.state] || b.state}`}),
        b.state === "booked" ? el("div", {}, el("div", {class: "muted", text: "预约码"}), el("div", {class: "code", id: "code", text: b.code}), qr,
          el("p", {class: "muted", text: "请在预约时段内到网点取号机输入预约码、扫描二维码或刷身份证取号。"})) : null,
        b.ticket_number ? el("div", {}, el("div", {class: "muted", text: "号码"}), el("div", {class: "big", text: b.ticket_number})) : null)];
    if (b.state === "booked") parts.push(el("button", {class: "ghost", id: "cancel", text: "取消预约",
      onclick: () => confirmCancel(id, out)}));
    if (b.state === "booked" || (b.ticket_number && b.state === "redeemed" && !b.can_rate && !b.rating)) {
      if (b.form) parts.push(el("div", {class: "muted", id: "form-state", text: `${b.form.title}:${FORM_STATE[b.form.state] || b.form.state}`}));
      parts.push(link(`/m/me/${id}/form`, b.form ? "修改预填单" : "填写预填单", "btn ghost"));
    }
    if (b.can_rate) parts.push(rating(b.rating_levels, (score) => api("POST", `/api/public/bookings/${id}/rate`, {score})));
    else if (b.rating) parts.push(msg("谢谢您对我们工作的支持,再见", "ok"));
    parts.push(out);
    draw(...parts);
  }
  /** Cancelling cannot be undone (the code stops working): ask first (issue 17). */
  function confirmCancel(id, out) {
    out.replaceChildren(el("div", {class: "card", id: "cancel-confirm"},
      el("p", {text: "确定取消这个预约吗?取消后预约码即失效。"}),
      el("button", {class: "btn", id: "cancel-yes", text: "确认取消", onclick: async () => {
        const r = await api("POST", `/api/public/bookings/${id}/cancel`);
        if (!r.ok) return out.replaceChildren(msg(errText(r)));
        oneBooking(id);
      }}),
      el("button", {class: "ghost", id: "cancel-no", text: "不取消", onclick: () => out.replaceChildren()})));
  }
  function scanned(branchCode, day, code) {
    draw(el("h1", {text: "预约取号"}), el("div", {class: "card"},
      el("p", {text: "这是预约取号二维码。请在预约时段内,在网点取号机上扫描它或输入预约码。"}),
      el("p", {class: "muted", text: `网点 ${branchCode} · ${day.slice(0, 4)}-${day.slice(4, 6)}-${day.slice(6)}`})),
      link("/m/me", "查看我的预约", "btn"));
  }

  // --- routing -----------------------------------------------------------------------------
  function navState() {
    document.getElementById("nav-login").textContent = token() ? "已登录" : "登录";
    const p = location.pathname;
    document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("on",
      (a.dataset.nav === "home" && (p === "/m" || p.startsWith("/m/b"))) || (a.dataset.nav === "me" && p.startsWith("/m/me")) || (a.dataset.nav === "login" && p === "/m/login")));
  }
  function route() {
    clearInterval(timer);
    navState();
    const p = location.pathname.replace(/\/+$/, "") || "/m";
    let m;
    if (p === "/m") return home();
    if ((m = p.match(/^\/m\/b\/(\d{4,16})$/))) return branch(m[1]);
    if ((m = p.match(/^\/m\/book\/(\d{4,16})$/))) return book(m[1]);
    if (p === "/m/login") return login();
    if (p === "/m/me") return mine();
    if ((m = p.match(/^\/m\/me\/([0-9A-Za-z_-]+)$/))) return oneBooking(m[1]);
    if ((m = p.match(/^\/m\/t\/([0-9A-Za-z_-]+)$/))) return ticket(`/api/public/tickets/${m[1]}`);
    if ((m = p.match(/^\/m\/t\/([0-9A-Za-z_-]+)\/form$/))) return ticketForm(m[1]);
    if ((m = p.match(/^\/m\/me\/([0-9A-Za-z_-]+)\/form$/))) return bookingForm(m[1]);
    if ((m = p.match(/^\/b\/(\d{4,16})\/t\/(\d{8}-[A-Za-z]{0,3}\d{1,6})$/))) return ticket(`/api/public/branches/${m[1]}/tickets/${m[2]}`);
    if ((m = p.match(/^\/yy\/(\d{4,16})\/(\d{8})\/(\d{6})$/))) return scanned(m[1], m[2], m[3]);
    draw(msg("页面不存在。"), link("/m", "返回首页", "btn"));
  }
  window.addEventListener("popstate", route);
  route();
})();
