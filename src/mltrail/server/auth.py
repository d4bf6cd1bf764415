"""Who is calling, and may they: the access check every API route declares.

Every route under ``/api`` depends on :func:`require` with the least role it needs
and the project it touches (a *scope*)::

    @router.post("/runs/{run_id}/tags", dependencies=[require("writer", run_scope())])

With auth off (the embedded default) everyone may do everything and the acting user
is whatever the client names in ``X-Mltrail-User`` (as with MLflow's open server).
With ``--auth`` the request must carry ``Authorization: Bearer <token>``; the token's
user needs ``role`` (reader < writer < maintainer < admin) in the scope's project,
or globally. The route table test walks ``app.routes`` and checks every route has
exactly one :class:`Access` dependency, so a new route cannot be left open.

The role ``"authenticated"`` (:data:`ANYONE`) admits any valid token whatever its
roles (``whoami``, one's own tokens). The token is checked before the scope is
looked up, so an anonymous caller learns nothing (401 whatever the ids); a scope
that names a missing run or project counts as "no project", so a caller without a
global role gets 403 for a missing id as for someone else's (no existence leak).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from mltrail.errors import (
    AuthenticationRequired,
    InvalidValueError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)

__all__ = [
    "ANYONE",
    "GLOBAL",
    "ROLES",
    "Access",
    "Principal",
    "Scope",
    "body_scope",
    "global_scope",
    "param_scope",
    "require",
    "run_scope",
]

ROLES = ("reader", "writer", "maintainer", "admin")
_RANK = {r: i for i, r in enumerate(ROLES)}
GLOBAL = "*"
ANYONE = "authenticated"  # any valid token, whatever its roles


@dataclass(frozen=True)
class Principal:
    """The caller: a user name and a role per project (``"*"``: every project)."""

    name: str | None
    roles: Mapping[str, str] = field(default_factory=dict)
    authenticated: bool = False  # False: auth is off, the name is only what the client said

    def rank_in(self, project: str | None) -> int:
        if not self.authenticated:
            return _RANK["admin"]
        best = _RANK.get(self.roles.get(GLOBAL, ""), -1)
        if project is not None:
            best = max(best, _RANK.get(self.roles.get(project, ""), -1))
        return best

    def allows(self, role: str, project: str | None) -> bool:
        return self.rank_in(project) >= _RANK[role]

    def is_admin(self) -> bool:
        """An admin of every project (always, with auth off)."""
        return self.rank_in(None) >= _RANK["admin"]

    def registry_roles(self) -> frozenset[str] | None:
        """Roles for the registry's policy checks; None when auth is off (the policy's
        own ``roles`` table decides, as in embedded mode).

        With auth on the server's roles are authoritative: the registry is one
        namespace for all projects, so the caller's global role (project ``"*"``)
        counts, with every role below it, and the policy document's ``roles`` and
        ``default_roles`` are not consulted (``Policy.actor`` uses given roles as they
        are). A user with roles only in some projects gets no registry role."""
        if not self.authenticated:
            return None
        rank = self.rank_in(None)
        return frozenset(ROLES[: rank + 1]) if rank >= 0 else frozenset()


Scope = Callable[[Request], Awaitable[str | None]]


def global_scope() -> Scope:
    """The route touches no single project (registry, projects list, objects)."""

    async def scope(request: Request) -> str | None:
        return None

    return scope


def param_scope(name: str = "project") -> Scope:
    """The project is a path or query parameter."""

    async def scope(request: Request) -> str | None:
        value = request.path_params.get(name) or request.query_params.get(name)
        return str(value) if value else None

    return scope


def body_scope(name: str = "project") -> Scope:
    """The project is a field of the JSON body."""

    async def scope(request: Request) -> str | None:
        try:
            body = await request.json()
        except ValueError:
            return None  # the route's own validation says what is wrong
        value = body.get(name) if isinstance(body, dict) else None
        return str(value) if value else None

    return scope


def run_scope(name: str = "run_id") -> Scope:
    """The project of the run named by a path parameter."""

    async def scope(request: Request) -> str | None:
        run_id = request.path_params.get(name)
        if not run_id:
            return None
        store = request.app.state.mltrail.store
        project: str = await run_in_threadpool(store.run_project, str(run_id))
        return project

    return scope


class Access:
    """The dependency behind :func:`require`; returns the :class:`Principal`."""

    def __init__(self, role: str, scope: Scope) -> None:
        if role not in _RANK and role != ANYONE:
            raise InvalidValueError(
                f"unknown role {role!r}", hint=f"one of {', '.join(ROLES)}, {ANYONE}"
            )
        self.role = role
        self.scope = scope

    async def __call__(self, request: Request) -> Principal:
        state = request.app.state.mltrail
        if not state.config.auth:
            principal = Principal(request.headers.get("x-mltrail-user") or None)
        else:
            principal = await authenticate(request)
            request.state.principal = principal  # the audit log's actor, even if refused
            if self.role == ANYONE:
                return principal
            try:
                project = await self.scope(request)
            except (NotFoundError, ValidationError):
                # a missing (or malformed) id: only a global role may learn that (404)
                project = None
            request.state.project = project
            if not principal.allows(self.role, project):
                where = f"project {project!r}" if project else "this server"
                raise PermissionDenied(
                    f"{principal.name} may not do this: it needs the {self.role} role in {where}",
                    hint="ask an admin: mltrail users grant USER ROLE --project PROJECT",
                )
        request.state.principal = principal
        return principal


def require(role: str, scope: Scope | None = None) -> Any:
    """A FastAPI dependency: the caller needs ``role`` in ``scope``'s project."""
    from fastapi import Depends

    return Depends(Access(role, scope or global_scope()))


async def authenticate(request: Request) -> Principal:
    """The principal a request's bearer token belongs to (auth on)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationRequired(
            "this server needs an API token",
            hint="run: mltrail login SERVER_URL (or set MLTRAIL_TOKEN)",
        )
    from mltrail.server.tokens import principal_for_token

    store = request.app.state.mltrail.store
    principal: Principal | None = await run_in_threadpool(principal_for_token, store, token)
    if principal is None:
        raise AuthenticationRequired(
            "the API token is not valid (unknown, revoked or expired)",
            hint="run: mltrail login SERVER_URL to get a new one",
        )
    return principal
