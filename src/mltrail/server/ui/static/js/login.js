// "/login": keep an API token in this browser; every API request then sends it.
import { api, setToken } from "./api.js";
import { byId } from "./dom.js";

export async function main() {
  const form = byId("login-form");
  if (!form) return; // auth is off
  const error = byId("login-error");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.hidden = true;
    const value = byId("token").value.trim();
    try {
      await api("/whoami", { token: value });
    } catch (err) {
      error.textContent = err.status === 401 ? "This token is not valid (unknown, revoked or expired)." : err.message;
      error.hidden = false;
      byId("token").setAttribute("aria-invalid", "true");
      byId("token").focus();
      return;
    }
    setToken(value, byId("remember").checked);
    const next = new URLSearchParams(location.search).get("next");
    location.assign(next && next.startsWith("/") && !next.startsWith("//") ? next : "/");
  });
  byId("token").focus();
}
