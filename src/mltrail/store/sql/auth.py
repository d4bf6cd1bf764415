"""Users, roles per project, API tokens and the audit log in SQL (a server with ``--auth``).

A token is stored only as the SHA-256 of its text (:mod:`mltrail.server.tokens` makes
and hashes them); nothing here ever sees or returns a token itself. The audit log is
append-only: the migration installs triggers that refuse UPDATE and DELETE on it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from mltrail.errors import AlreadyExists, InvalidValueError, NotFoundError
from mltrail.store.sql import schema as s

__all__ = ["ROLES", "ApiToken", "AuditEntry", "AuthStoreMixin", "TokenOwner", "User"]

ROLES = ("reader", "writer", "maintainer", "admin")
GLOBAL = "*"

_U = s.users.c
_R = s.user_roles.c
_T = s.api_tokens.c
_A = s.audit_log.c
_INSERT_AUDIT = insert(s.audit_log)


@dataclass(frozen=True)
class User:
    """A user of a server with auth on: a role per project (``"*"``: every project)."""

    name: str
    roles: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    created_by: str | None = None
    disabled: bool = False


@dataclass(frozen=True)
class ApiToken:
    """What is known of a token once it is made: never the token itself."""

    id: int
    user: str
    name: str
    prefix: str
    created_at: float
    last_used_at: float | None
    expires_at: float | None
    revoked_at: float | None


@dataclass(frozen=True)
class TokenOwner:
    """The user a valid token belongs to (see :meth:`AuthStoreMixin.token_owner`)."""

    token_id: int
    user: str
    roles: Mapping[str, str]
    expires_at: float | None
    last_used_at: float | None


@dataclass(frozen=True)
class AuditEntry:
    """One API request that wrote (or tried to)."""

    id: int
    at: float
    actor: str | None
    method: str
    path: str
    status: int
    project: str | None
    request_id: str


def check_name(name: str, what: str = "user name") -> str:
    """A user or project name as stored: non-empty, at most 250 characters."""
    if not isinstance(name, str) or not name.strip() or len(name) > s.KEY_LEN:
        raise InvalidValueError(
            f"{what} {name!r} is not valid",
            hint=f"give 1 to {s.KEY_LEN} characters",
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidValueError(f"unknown role {role!r}", hint=f"one of {', '.join(ROLES)}")
    return role


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id, user=row.user, name=row.name, prefix=row.prefix, created_at=row.created_at,
        last_used_at=row.last_used_at, expires_at=row.expires_at, revoked_at=row.revoked_at,
    )  # fmt: skip


_TOKEN_COLUMNS = (
    _T.id, _U.name.label("user"), _T.name, _T.prefix, _T.created_at,
    _T.last_used_at, _T.expires_at, _T.revoked_at,
)  # fmt: skip


class AuthStoreMixin:
    """Auth methods of :class:`~mltrail.store.sql.store.SqlStore`."""

    # provided by SqlStore
    _write: Any
    _read: Any

    # -- users and roles ------------------------------------------------------------

    def _user_id(self, conn: Connection, name: str) -> int:
        uid = conn.execute(select(_U.id).where(_U.name == name)).scalar()
        if uid is None:
            raise NotFoundError(f"no user named {name!r}", hint="see the users: mltrail users ls")
        return int(uid)

    def _user(self, conn: Connection, name: str) -> User:
        row = conn.execute(select(s.users).where(_U.name == name)).first()
        if row is None:
            raise NotFoundError(f"no user named {name!r}", hint="see the users: mltrail users ls")
        roles = conn.execute(select(_R.project, _R.role).where(_R.user_id == row.id)).all()
        return User(
            name=row.name, roles={p: r for p, r in roles}, created_at=row.created_at,
            created_by=row.created_by, disabled=bool(row.disabled),
        )  # fmt: skip

    def create_user(
        self, name: str, *, roles: Mapping[str, str] | None = None, actor: str | None = None
    ) -> User:
        """A new user, with ``roles`` (project -> role; ``"*"``: every project)."""
        check_name(name)
        for project, role in (roles or {}).items():
            check_name(project, "project")
            check_role(role)
        now = time.time()
        with self._write() as conn:
            if conn.execute(select(_U.id).where(_U.name == name)).first() is not None:
                raise AlreadyExists(
                    f"a user named {name!r} already exists",
                    hint="grant it a role: mltrail users grant NAME ROLE --project PROJECT",
                )
            uid = conn.execute(
                insert(s.users).values(name=name, created_by=actor, created_at=now, disabled=False)
            ).inserted_primary_key[0]
            for project, role in (roles or {}).items():
                conn.execute(
                    insert(s.user_roles).values(
                        user_id=uid, project=project, role=role, granted_by=actor, granted_at=now
                    )
                )
            return self._user(conn, name)

    def get_user(self, name: str) -> User:
        with self._read() as conn:
            return self._user(conn, name)

    def list_users(self) -> list[User]:
        with self._read() as conn:
            users = conn.execute(select(s.users).order_by(_U.name)).all()
            roles: dict[int, dict[str, str]] = {}
            for uid, project, role in conn.execute(select(_R.user_id, _R.project, _R.role)):
                roles.setdefault(uid, {})[project] = role
        return [
            User(
                name=u.name,
                roles=roles.get(u.id, {}),
                created_at=u.created_at,
                created_by=u.created_by,
                disabled=bool(u.disabled),
            )
            for u in users
        ]

    def grant_role(self, name: str, project: str, role: str, *, actor: str | None = None) -> User:
        """Give ``name`` ``role`` in ``project`` (replacing the role it had there)."""
        check_name(project, "project")
        check_role(role)
        with self._write() as conn:
            uid = self._user_id(conn, name)
            conn.execute(delete(s.user_roles).where((_R.user_id == uid) & (_R.project == project)))
            conn.execute(
                insert(s.user_roles).values(
                    user_id=uid,
                    project=project,
                    role=role,
                    granted_by=actor,
                    granted_at=time.time(),
                )
            )
            return self._user(conn, name)

    def revoke_role(self, name: str, project: str, *, actor: str | None = None) -> User:
        """Take away ``name``'s role in ``project`` (its other roles stay)."""
        with self._write() as conn:
            uid = self._user_id(conn, name)
            gone = conn.execute(
                delete(s.user_roles).where((_R.user_id == uid) & (_R.project == project))
            ).rowcount
            if not gone:
                raise NotFoundError(
                    f"{name} has no role in project {project!r}",
                    hint=f"see its roles: mltrail users show {name}",
                )
            return self._user(conn, name)

    def set_user_disabled(self, name: str, disabled: bool, *, actor: str | None = None) -> User:
        """Disable (every token refused) or enable a user."""
        with self._write() as conn:
            uid = self._user_id(conn, name)
            conn.execute(update(s.users).where(_U.id == uid).values(disabled=disabled))
            return self._user(conn, name)

    def count_admins(self) -> int:
        """Enabled users with the admin role on every project."""
        with self._read() as conn:
            rows = conn.execute(
                select(_R.user_id)
                .join(s.users, _U.id == _R.user_id)
                .where((_R.project == GLOBAL) & (_R.role == "admin") & ~_U.disabled)
            ).all()
        return len(rows)

    # -- tokens -----------------------------------------------------------------------

    def create_token(
        self,
        user: str,
        name: str,
        token_hash: str,
        prefix: str,
        *,
        expires_at: float | None = None,
    ) -> ApiToken:
        """Store a new token of ``user`` by its hash (the caller shows the token once)."""
        check_name(name, "token name")
        with self._write() as conn:
            uid = self._user_id(conn, user)
            tid = conn.execute(
                insert(s.api_tokens).values(
                    user_id=uid,
                    name=name[: s.NAME_LEN],
                    token_hash=token_hash,
                    prefix=prefix,
                    created_at=time.time(),
                    expires_at=expires_at,
                )
            ).inserted_primary_key[0]
            row = conn.execute(
                select(*_TOKEN_COLUMNS).join(s.users, _U.id == _T.user_id).where(_T.id == tid)
            ).one()
        return _token(row)

    def list_tokens(
        self, user: str | None = None, *, include_revoked: bool = False
    ) -> list[ApiToken]:
        """The tokens of ``user`` (None: everyone's), newest first."""
        query = select(*_TOKEN_COLUMNS).join(s.users, _U.id == _T.user_id)
        if user is not None:
            query = query.where(_U.name == user)
        if not include_revoked:
            query = query.where(_T.revoked_at.is_(None))
        with self._read() as conn:
            return [_token(r) for r in conn.execute(query.order_by(_T.id.desc()))]

    def revoke_token(self, token_id: int, *, user: str | None = None) -> ApiToken:
        """Revoke a token (``user`` given: only if it is theirs)."""
        with self._write() as conn:
            query = select(*_TOKEN_COLUMNS).join(s.users, _U.id == _T.user_id)
            query = query.where(_T.id == token_id)
            if user is not None:
                query = query.where(_U.name == user)
            row = conn.execute(query).first()
            if row is None:
                raise NotFoundError(
                    f"no token #{token_id}" + (f" of {user}" if user else ""),
                    hint="see your tokens: mltrail tokens ls",
                )
            if row.revoked_at is None:
                conn.execute(
                    update(s.api_tokens).where(_T.id == token_id).values(revoked_at=time.time())
                )
                row = conn.execute(
                    select(*_TOKEN_COLUMNS)
                    .join(s.users, _U.id == _T.user_id)
                    .where(_T.id == token_id)
                ).one()
        return _token(row)

    def token_owner(self, token_hash: str, now: float | None = None) -> TokenOwner | None:
        """The enabled user of a valid (known, unrevoked, unexpired) token; else None."""
        now = time.time() if now is None else now
        with self._read() as conn:
            row = conn.execute(
                select(_T.id, _T.user_id, _U.name, _T.expires_at, _T.last_used_at)
                .join(s.users, _U.id == _T.user_id)
                .where(
                    (_T.token_hash == token_hash)
                    & _T.revoked_at.is_(None)
                    & ~_U.disabled
                    & or_(_T.expires_at.is_(None), _T.expires_at > now)
                )
            ).first()
            if row is None:
                return None
            roles = conn.execute(select(_R.project, _R.role).where(_R.user_id == row.user_id))
            return TokenOwner(
                token_id=row.id, user=row.name, roles={p: r for p, r in roles},
                expires_at=row.expires_at, last_used_at=row.last_used_at,
            )  # fmt: skip

    def touch_token(self, token_id: int, now: float, every: float) -> None:
        """Record a use of the token, at most once per ``every`` seconds."""
        with self._write() as conn:
            conn.execute(
                update(s.api_tokens)
                .where(
                    (_T.id == token_id)
                    & or_(_T.last_used_at.is_(None), _T.last_used_at < now - every)
                )
                .values(last_used_at=now)
            )

    # -- audit log --------------------------------------------------------------------

    def append_audit(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Append entries (dicts with the columns of :class:`AuditEntry` but ``id``)."""
        if not entries:
            return
        with self._write() as conn:
            conn.execute(_INSERT_AUDIT, [dict(e) for e in entries])

    def list_audit(
        self,
        *,
        actor: str | None = None,
        project: str | None = None,
        before_id: int | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Audit entries, newest first; ``before_id`` pages back from an entry's id."""
        query = select(s.audit_log)
        if actor is not None:
            query = query.where(_A.actor == actor)
        if project is not None:
            query = query.where(_A.project == project)
        if before_id is not None:
            query = query.where(_A.id < before_id)
        if since is not None:
            query = query.where(_A.at >= since)
        with self._read() as conn:
            rows = conn.execute(query.order_by(_A.id.desc()).limit(max(1, limit))).all()
        return [
            AuditEntry(
                id=r.id,
                at=r.at,
                actor=r.actor,
                method=r.method,
                path=r.path,
                status=r.status,
                project=r.project,
                request_id=r.request_id,
            )
            for r in rows
        ]
