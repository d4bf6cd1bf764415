"""The UI's pages: server-rendered shells (Jinja2) that our ES modules fill from /api/v1.

A page holds no data of the store: only what its URL names (a project, a run id, a
model) and whether auth is on. Everything else the browser reads through the API with
the user's token, so a page route needs no access check of its own and, with
``--auth``, shows nothing to a caller without a token (the API answers 401 and the
page sends the user to ``/login``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from mltrail._version import __version__
from mltrail.server.ui.assets import asset_version, serve_asset

__all__ = ["NAV", "PAGES", "NavItem", "Page", "render_error", "router"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    section: str  # the pages that highlight it


# The header's sections (each with a page module in static/js/, templates and routes below).
NAV = (
    NavItem("Projects", "/", "projects"),
    NavItem("Models", "/models", "models"),
    NavItem("Sweeps", "/sweeps", "sweeps"),
    NavItem("Pipelines", "/pipelines", "pipelines"),
)


@cache
def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _render(
    request: Request,
    template: str,
    *,
    title: str,
    section: str,
    crumbs: list[tuple[str, str]] | None = None,
    data: dict[str, str] | None = None,
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    """A page: ``template`` in the shell; ``crumbs`` (label, href) above its heading
    (None: no heading, the template has its own); ``data`` becomes ``data-*`` of body."""
    auth = bool(request.app.state.mltrail.config.auth)
    context: dict[str, Any] = {
        "title": title, "section": section, "crumbs": crumbs, "data": data or {}, "auth": auth,
        "nav": NAV, "static": f"/ui/static/{asset_version()}", "version": __version__,
        "page": template.removesuffix(".html"), "charts": False,
    }  # fmt: skip
    context.update(extra)
    html = _env().get_template(template).render(context)
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return HTMLResponse(html, status_code=status, headers=headers)


def render_error(request: Request, status: int, message: str) -> HTMLResponse:
    """The HTML error page (for a browser asking for a page, not for the API)."""
    titles = {404: "Page not found", 405: "Not allowed", 500: "Something went wrong"}
    return _render(
        request, "error.html", title=titles.get(status, f"Error {status}"), section="",
        status=status, code=status, message=message, page="error",
    )  # fmt: skip


def wants_html(request: Request) -> bool:
    """A browser asking for a page (not an API client, not a static file)."""
    path = request.url.path
    if path.startswith(("/api/", "/ui/static/")) or path == "/health":
        return False
    return "text/html" in request.headers.get("accept", "")


# -- pages -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """A page route: its template, header section, title and crumbs (``{param}`` is a path
    parameter's value; crumbs None: no heading), and whether it draws charts (Plotly.js
    is then preloaded). Its path parameters become the body's ``data-*``."""

    path: str
    template: str
    section: str
    title: str
    crumbs: tuple[tuple[str, str], ...] | None = ()
    charts: bool = False


_PROJECTS = ("Projects", "/")
_MODELS = ("Models", "/models")
_SWEEPS = ("Sweeps", "/sweeps")
PAGES = (
    Page("/", "projects.html", "projects", "Projects"),
    Page("/projects/{project:path}", "runs.html", "projects", "{project}", (_PROJECTS,)),
    Page("/runs/{run}", "run.html", "projects", "Run", (_PROJECTS,), charts=True),
    Page("/compare", "compare.html", "projects", "Compare runs", (_PROJECTS,), charts=True),
    Page("/models", "models.html", "models", "Models"),
    Page("/models/{model}", "model.html", "models", "{model}", (_MODELS,)),
    Page(
        "/models/{model}/versions/{ref}",
        "version.html",
        "models",
        "{model} {ref}",
        (_MODELS, ("{model}", "/models/{model}")),
    ),
    Page("/sweeps", "sweeps.html", "sweeps", "Sweeps"),
    Page("/sweeps/{sweep}", "sweep.html", "sweeps", "Sweep", (_SWEEPS,), charts=True),
    Page("/pipelines", "pipelines.html", "pipelines", "Pipelines"),
    Page("/login", "login.html", "login", "Sign in", None),
)


def _route(page: Page) -> Any:
    def view(request: Request) -> HTMLResponse:
        params = {k: str(v) for k, v in request.path_params.items()}
        quoted = {k: quote(v, safe="") for k, v in params.items()}
        crumbs = None if page.crumbs is None else [
            (label.format(**params), href.format(**quoted)) for label, href in page.crumbs
        ]  # fmt: skip
        return _render(
            request, page.template, title=page.title.format(**params), section=page.section,
            crumbs=crumbs, data=params, charts=page.charts,
        )  # fmt: skip

    return view


for _page in PAGES:
    router.add_api_route(_page.path, _route(_page), methods=["GET"], response_class=HTMLResponse)


@router.get("/ui/static/{version}/{name:path}")
def static_file(request: Request, version: str, name: str) -> Response:
    return serve_asset(request, version, name)
