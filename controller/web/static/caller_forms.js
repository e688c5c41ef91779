/* The soft caller's pre-filled form (预填单, SPEC I2): when the teller calls a number whose
 * customer filled in a form (at the kiosk or on the phone), the form shows here, whole,
 * with a button to print it on the box's printer. Only this window's teller can read it
 * (GET /api/windows/{n}/form). Needs caller.js (the "caller:panel" event). */
"use strict";

(() => {
  const {api, $, el} = PD;
  let shownFor = null, win = null;

  document.addEventListener("caller:panel", async (ev) => {
    win = ev.detail.window;
    const number = ev.detail.current ? ev.detail.current.number : null;
    if (number === shownFor) return;  // the panel refreshes often; the form once per call
    shownFor = number;
    if (!number) { hide(); return; }
    const res = await api("GET", `/api/windows/${win}/form`);
    if (!res.ok || !res.data.form || res.data.number !== shownFor) { hide(); return; }
    draw(res.data.form);
  });

  function hide() {
    $("#form").classList.add("hidden");
    $("#cf-fields").replaceChildren();  // nothing of the last customer stays in the page
    $("#cf-note").textContent = "";
  }

  function draw(form) {
    $("#cf-title").textContent = `${form.title} ${form.title_en || ""}`;
    const how = form.channel === "remote" ? "手机填写 phone" : "排队机填写 kiosk";
    $("#cf-meta").textContent = `${form.number} · ${how} · ${PD.hhmm(form.filled_at)}`;
    $("#cf-fields").replaceChildren(...form.fields.flatMap((f) => [
      el("dt", {text: f.label}), el("dd", {text: f.value})]));
    $("#cf-note").textContent = "";
    $("#form").classList.remove("hidden");
  }

  $("#cf-print").addEventListener("click", async () => {
    const res = await api("POST", `/api/windows/${win}/print-form`);
    const ok = res.ok && res.data.printed;
    $("#cf-note").textContent = ok ? "已打印 Printed" : res.ok && res.data.print_error
      ? res.data.print_error.message : PD.errorText(res);
  });
})();
