// "/": every project with its number of runs.
import { api } from "./api.js";
import { byId, emptyState, fmtDate, fmtNum, h, listPage } from "./dom.js";

export function main() {
  return listPage({
    box: byId("projects"), filter: byId("project-filter"), load: api("/projects"), what: "Projects",
    name: (p) => p.project.name,
    empty: emptyState("No projects yet", "A project appears here with its first run. Log one from Python:",
      'import mltrail\nrun = mltrail.init(project="my-project", config={"lr": 0.01})\nrun.log({"loss": 0.5})\nrun.finish()'),
    columns: [
      { label: "Project", value: (p) => h("a", { href: "/projects/" + encodeURIComponent(p.project.name) }, p.project.name) },
      { label: "Runs", value: (p) => fmtNum(p.run_count), num: true },
      { label: "Created", value: (p) => fmtDate(p.project.created_at) },
    ],
  });
}
