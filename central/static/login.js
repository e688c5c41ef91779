/* The login page: POST /api/auth/login, then on to where the user was going. */
"use strict";
(() => {
  const {boot, $, api, errorText} = PD;
  $("#login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("#error").textContent = "";
    const res = await api("POST", "/api/auth/login",
      {user: $("#user").value.trim(), password: $("#password").value});
    if (!res.ok) { $("#error").textContent = errorText(res); return; }
    location.href = boot.next || "/live";
  });
})();
