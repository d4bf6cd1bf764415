// Theme: follows the system (prefers-color-scheme) until the user picks dark or light.

const KEY = "mltrail.theme";
const ORDER = ["system", "dark", "light"];
const LABEL = { system: "follows the system", dark: "dark", light: "light" };
const ICON = { system: "◐", dark: "☾", light: "☀" };

export function currentTheme() {
  return localStorage.getItem(KEY) || "system";
}

const systemDark = () => matchMedia("(prefers-color-scheme: dark)").matches;

function apply(theme) {
  document.documentElement.dataset.theme = theme === "system" ? (systemDark() ? "dark" : "light") : theme;
  const btn = document.getElementById("theme-toggle");
  if (btn) {
    btn.textContent = ICON[theme];
    btn.setAttribute("aria-label", `Theme: ${LABEL[theme]}`);
    btn.title = `Theme: ${LABEL[theme]} (click to change)`;
  }
  document.dispatchEvent(new CustomEvent("themechange"));
}

export function initTheme() {
  apply(currentTheme());
  document.getElementById("theme-toggle")?.addEventListener("click", () => {
    const next = ORDER[(ORDER.indexOf(currentTheme()) + 1) % ORDER.length];
    if (next === "system") localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, next);
    apply(next);
  });
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    if (currentTheme() === "system") apply("system");
  });
}

/** Colours of the current theme for charts (read from the CSS variables). */
export function themeColors() {
  const css = getComputedStyle(document.documentElement);
  const get = (name) => css.getPropertyValue(name).trim();
  return { fg: get("--fg"), muted: get("--muted"), border: get("--border"), bg: get("--bg"), accent: get("--accent") };
}
