"""/api/v1 routes: who am I, users and their roles, API tokens, the audit log.

Admins (global role) manage users, roles and everyone's tokens and read the audit log;
any valid token may ask ``whoami`` and make, list and revoke its user's own tokens. A
token is in the answer of the request that makes it, and nowhere else, ever.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from mltrail.errors import AuthenticationRequired, InvalidValueError
from mltrail.server.auth import ANYONE, Principal, global_scope, require

__all__ = ["router"]

router = APIRouter()

ADMIN = require("admin", global_scope())
SELF = require(ANYONE, global_scope())
_MAX_EXPIRY_DAYS = 3650
MAX_ID = 2**63 - 1  # larger ids overflow the databases' integers (a 400, not a 500)


def _store(request: Request) -> Any:
    return request.app.state.mltrail.store


def _changed() -> None:
    """Roles or tokens changed: this process trusts nothing it cached about them."""
    from mltrail.server.tokens import forget_tokens

    forget_tokens()


def _named(principal: Principal) -> str:
    if not principal.authenticated or not principal.name:
        raise AuthenticationRequired(
            "tokens belong to users, and this server runs without auth",
            hint="start the server with --auth to use users and tokens",
        )
    return principal.name


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=250)
    roles: dict[str, str] = Field(default_factory=dict, description="project -> role; '*': all")


class RoleIn(BaseModel):
    role: str = Field(description="reader, writer, maintainer or admin")


class TokenIn(BaseModel):
    name: str = Field("token", min_length=1, max_length=128)
    expires_in_days: float | None = Field(None, gt=0, le=_MAX_EXPIRY_DAYS)


class DisabledIn(BaseModel):
    disabled: bool


def _issue(request: Request, user: str, body: TokenIn) -> dict[str, Any]:
    from mltrail.server.tokens import issue_token

    days = body.expires_in_days
    token, record = issue_token(
        _store(request), user, body.name, expires_in=None if days is None else days * 86400
    )
    return {"token": token, "record": record}


# -- whoami and one's own tokens -------------------------------------------------------


@router.get("/whoami", response_model=None)
def whoami(request: Request, principal: Principal = SELF) -> dict[str, Any]:
    """The caller: name, roles per project, whether auth is on."""
    return {
        "name": principal.name,
        "roles": dict(principal.roles),
        "authenticated": principal.authenticated,
        "auth": bool(request.app.state.mltrail.config.auth),
    }


@router.post("/tokens", status_code=201, response_model=None)
def create_own_token(
    request: Request, body: TokenIn, principal: Principal = SELF
) -> dict[str, Any]:
    """A new token for the caller: ``{"token", "record"}``. The token is shown this once."""
    return _issue(request, _named(principal), body)


@router.get("/tokens", response_model=None)
def list_own_tokens(
    request: Request, include_revoked: bool = False, principal: Principal = SELF
) -> list[Any]:
    """The caller's tokens (never the tokens themselves: name, prefix, dates)."""
    tokens: list[Any] = _store(request).list_tokens(
        _named(principal), include_revoked=include_revoked
    )
    return tokens


@router.delete("/tokens/{token_id}", response_model=None)
def revoke_token(
    request: Request, token_id: int = Path(ge=1, le=MAX_ID), principal: Principal = SELF
) -> Any:
    """Revoke one of the caller's tokens (an admin: anyone's)."""
    owner = None if principal.is_admin() else _named(principal)
    record = _store(request).revoke_token(token_id, user=owner)
    _changed()
    return record


# -- users and roles (admins) ----------------------------------------------------------


@router.get("/users", response_model=None, dependencies=[ADMIN])
def list_users(request: Request) -> list[Any]:
    """Every user with their roles."""
    users: list[Any] = _store(request).list_users()
    return users


@router.post("/users", status_code=201, response_model=None)
def create_user(request: Request, body: UserIn, principal: Principal = ADMIN) -> Any:
    """A new user with ``roles`` (project -> role; ``"*"``: every project)."""
    return _store(request).create_user(body.name, roles=body.roles, actor=principal.name)


@router.get("/users/{name}", response_model=None, dependencies=[ADMIN])
def get_user(request: Request, name: str) -> Any:
    return _store(request).get_user(name)


@router.put("/users/{name}/roles/{project}", response_model=None)
def grant_role(
    request: Request, name: str, project: str, body: RoleIn, principal: Principal = ADMIN
) -> Any:
    """Give the user ``role`` in ``project`` (``*``: every project), replacing its role
    there."""
    user = _store(request).grant_role(name, project, body.role, actor=principal.name)
    _changed()
    return user


@router.delete("/users/{name}/roles/{project}", response_model=None)
def revoke_role(request: Request, name: str, project: str, principal: Principal = ADMIN) -> Any:
    """Take away the user's role in ``project``."""
    user = _store(request).revoke_role(name, project, actor=principal.name)
    _changed()
    return user


@router.patch("/users/{name}", response_model=None)
def set_disabled(
    request: Request, name: str, body: DisabledIn, principal: Principal = ADMIN
) -> Any:
    """Disable a user (every token of theirs is refused) or enable it again."""
    if body.disabled and name == principal.name:
        raise InvalidValueError(
            "an admin cannot disable themselves", hint="ask another admin to do it"
        )
    user = _store(request).set_user_disabled(name, body.disabled, actor=principal.name)
    _changed()
    return user


@router.post("/users/{name}/tokens", status_code=201, response_model=None, dependencies=[ADMIN])
def create_user_token(request: Request, name: str, body: TokenIn) -> dict[str, Any]:
    """A token for another user (their first one): ``{"token", "record"}``, shown once."""
    return _issue(request, name, body)


@router.get("/users/{name}/tokens", response_model=None, dependencies=[ADMIN])
def list_user_tokens(request: Request, name: str, include_revoked: bool = False) -> list[Any]:
    _store(request).get_user(name)  # a missing user is a 404, not an empty list
    tokens: list[Any] = _store(request).list_tokens(name, include_revoked=include_revoked)
    return tokens


# -- audit log (admins) ----------------------------------------------------------------


@router.get("/audit", response_model=None, dependencies=[ADMIN])
def read_audit(
    request: Request,
    actor: str | None = None,
    project: str | None = None,
    before_id: int | None = Query(None, ge=1, le=MAX_ID, description="page back from this entry"),
    since: float | None = Query(None, ge=0, le=1e12, description="unix time"),
    limit: int = Query(100, ge=1),
) -> list[Any]:
    """Write requests, newest first (``before_id``: the last id of the previous page)."""
    audit = getattr(request.app.state, "mltrail_audit", None)
    if audit is not None:
        audit.flush()  # what this worker gathered so far is in the answer
    cap: int = request.app.state.mltrail.config.max_page_size
    entries: list[Any] = _store(request).list_audit(
        actor=actor, project=project, before_id=before_id, since=since, limit=min(limit, cap)
    )
    return entries
