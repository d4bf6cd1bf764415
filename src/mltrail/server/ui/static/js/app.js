// Entry point of every page: theme, session, then the page's own module (body[data-page]).
import { initSession } from "./api.js";
import { errorBox } from "./dom.js";
import { initTheme } from "./theme.js";

// page -> module
const PAGES = {
  projects: "projects.js", runs: "runs.js", run: "run.js", compare: "compare.js",
  models: "registry.js", model: "registry.js", version: "registry.js", login: "login.js",
  sweeps: "sweeps.js", sweep: "sweeps.js", pipelines: "pipelines.js",
};

initTheme();
initSession();

const page = document.body.dataset.page;
if (page in PAGES) {
  try {
    const module = await import(`./${PAGES[page]}`);
    const done = module.main(document.body.dataset);
    document.body.dataset.ready = "true"; // the page's controls answer from here on
    await done;
  } catch (err) {
    if (err && err.status === 401) {
      /* on the way to the login page */
    } else {
      console.warn("page failed:", err);
      document.getElementById("main").append(errorBox(err, "This page could not be shown"));
    }
  }
}
document.body.dataset.ready = "true";
