// Requests to /api/v1 with the user's token; errors become ApiError (code, hint, position).

const TOKEN_KEY = "mltrail.token";
export const API = "/api/v1";

export function token() {
  try {
    return localStorage.getItem(TOKEN_KEY) || sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(value, remember) {
  clearToken();
  (remember ? localStorage : sessionStorage).setItem(TOKEN_KEY, value);
}

export function clearToken() {
  localStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, error) {
    const e = error || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || "http_error";
    this.hint = e.hint || null;
    this.position = typeof e.position === "number" ? e.position : null;
    this.reason = e.reason || null;
  }
}

/** "/runs" + {project: "p", column: ["a", "b"]} -> "/api/v1/runs?project=p&column=a&column=b" */
export function apiUrl(path, params) {
  const qs = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) qs.append(key, String(v));
  }
  const q = qs.toString();
  return API + path + (q ? "?" + q : "");
}

export function authHeaders() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

function toLogin() {
  const here = location.pathname + location.search + location.hash;
  location.assign("/login?next=" + encodeURIComponent(here));
}

/** A JSON API call. `raw`: the Response itself (for blobs and CSV). */
export async function api(path, { method = "GET", params, body, signal, raw = false, token: given } = {}) {
  const headers = { Accept: "application/json", ...authHeaders() };
  if (given) headers.Authorization = `Bearer ${given}`;
  const init = { method, headers, signal };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(apiUrl(path, params), init);
  if (res.status === 401 && document.body.dataset.page !== "login" && !given) {
    toLogin();
    throw new ApiError(401, { code: "authentication_required", message: "sign in first" });
  }
  if (!res.ok) {
    let error = null;
    try {
      error = (await res.json()).error;
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, error);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

/** A float from its JSON form: numbers, or the strings "NaN", "Infinity", "-Infinity". */
export function num(v) {
  return typeof v === "string" ? Number(v) : v;
}

/** Save a response body as a file (CSV export, artifact files). */
export async function download(path, params, filename) {
  const res = await api(path, { params, raw: true });
  const blob = await res.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** Show who is signed in (auth on) and wire the sign-out button. */
export async function initSession() {
  if (document.body.dataset.auth !== "on" || document.body.dataset.page === "login") return;
  const who = document.getElementById("whoami");
  const out = document.getElementById("signout");
  out.addEventListener("click", () => {
    clearToken();
    location.assign("/login");
  });
  if (!token()) {
    toLogin();
    return;
  }
  try {
    const me = await api("/whoami");
    who.textContent = me.name || "";
    who.hidden = false;
    out.hidden = false;
  } catch {
    /* api() went to the login page on 401 */
  }
}
