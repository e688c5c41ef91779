/* The kiosk's pre-filled forms (预填单, SPEC I2): once a ticket is issued, a customer of a
 * business with forms may fill one in ("填写预填单", optional). The number comes first, so
 * nobody loses their place while typing; the form goes to the box with the issuing kiosk's
 * token (POST /api/tickets/{n}/form), and the teller who calls the number sees it.
 * Needs kiosk.js (PD.kiosk, the "kiosk:ticket" event). */
"use strict";

(() => {
  const {api, $, el} = PD;
  const K = PD.kiosk;
  const IDLE_S = 120;  // untouched this long: back to the start, like every kiosk screen
  const NUMERIC = {amount: "decimal", account: "numeric", id: "text", phone: "tel"};
  const T = {
    choose: ["请选择预填单", "Choose a form"],
    number: (n) => [`号码 ${n}`, `Number ${n}`],
    done: ["预填单已提交,柜员叫号时可直接查看。", "Form sent: the teller will see it when your number is called."],
    required: ["(必填)", " (required)"],
  };
  let forms = [], ticket = null, chosen = null;

  async function load() {
    const res = await api("GET", "/api/forms");
    if (res.ok) forms = res.data.forms || [];
  }
  const mine = (t) => forms.filter((f) => t && f.queue === t.queue);

  document.addEventListener("kiosk:ticket", (ev) => {
    ticket = ev.detail;
    $("#form-entry").classList.toggle("hidden", !(ticket.reprint_token && mine(ticket).length));
  });

  function pair(node, zhEn) { Object.assign(node.dataset, {zh: zhEn[0], en: zhEn[1]}); return node; }
  function idle() { K.countdown($("#f-countdown"), IDLE_S); }

  function open() {
    if (!ticket) return;
    const list = mine(ticket);
    chosen = null;
    pair($("#f-number"), T.number(ticket.number));
    $("#f-error").textContent = "";
    $("#f-fields").replaceChildren();
    $("#f-submit").classList.add("hidden");
    if (list.length === 1) draw(list[0]);
    else {
      pair($("#f-title"), T.choose);
      $("#f-choices").replaceChildren(...list.map((f) => pair(
        el("button", {type: "button", class: "k-btn", onclick: () => draw(f)}, f.title),
        [f.title, f.title_en || f.title])));
    }
    K.show("form");
    K.applyLang();
    idle();
  }

  function draw(form) {
    chosen = form;
    pair($("#f-title"), [form.title, form.title_en || form.title]);
    $("#f-choices").replaceChildren();
    $("#f-fields").replaceChildren(...form.fields.map(input));
    $("#f-submit").classList.remove("hidden");
    K.applyLang();
    idle();
  }

  function input(field) {
    const req = field.required ? T.required : ["", ""];
    const label = pair(el("span", {}, field.label), [field.label + req[0], (field.label_en || field.label) + req[1]]);
    let box;
    if (field.type === "choice") {
      box = el("select", {name: field.name}, el("option", {value: ""}, "—"),
        ...field.choices.map((c, i) => pair(el("option", {value: c}, c), [c, field.choices_en[i] || c])));
    } else {
      box = el("input", {name: field.name, maxlength: String(field.max_len), required: field.required,
        inputmode: NUMERIC[field.type] || null, autocomplete: "off", spellcheck: "false"});
    }
    box.addEventListener("input", idle);
    return el("label", {class: "f-field"}, label, box);
  }

  async function submit() {
    if (!ticket || !chosen) return;
    const fields = {};
    for (const node of $("#f-fields").querySelectorAll("input, select")) {
      if (node.value.trim()) fields[node.name] = node.value;
    }
    const res = await api("POST", "/api/tickets/" + encodeURIComponent(ticket.number) + "/form",
      {form: chosen.id, fields, token: ticket.reprint_token});
    if (!res.ok) { $("#f-error").textContent = PD.errorText(res, K.lang()); idle(); return; }
    $("#f-fields").replaceChildren();  // nothing typed stays on the screen
    $("#form-entry").classList.add("hidden");
    pair($("#r-take"), T.done);
    K.back();
  }

  $("#form-entry").addEventListener("click", open);
  $("#f-submit").addEventListener("click", submit);
  $("#f-back").addEventListener("click", () => { $("#f-fields").replaceChildren(); K.back(); });
  load();
})();
