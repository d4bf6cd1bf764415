"""The web UI, served by the same process as the API (``mltrail server`` / ``mltrail ui``).

Pages are Jinja2 shells (``templates/``) filled by plain ES modules (``static/js/``, no
build step, no CDN) that read ``/api/v1``; charts use Plotly.js from the installed
``plotly`` package. One module per page::

    /                               projects           projects.js
    /projects/{project}             runs table         runs.js (grid.js, columns.js)
    /runs/{run_id}                  one run            run.js (charts.js, artifacts.js)
    /compare?runs=a,b&project=p     runs side by side  compare.js
    /models, /models/{name},        the registry       registry.js (lineage.js)
    /models/{name}/versions/{ref}
    /login                          token sign-in      login.js

With ``--auth`` the browser keeps the user's API token in ``localStorage`` and sends it
as ``Authorization: Bearer`` on every API request (``api.js``); pages themselves carry
no data, see :mod:`mltrail.server.ui.pages`.
"""

from __future__ import annotations

from fastapi import FastAPI

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Add the UI's pages and static files to ``app``."""
    from mltrail.server.ui.pages import router

    app.include_router(router)
