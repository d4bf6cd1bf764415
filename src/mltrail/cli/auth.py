"""``mltrail login``/``logout``, ``mltrail users ...``, ``mltrail tokens ...``, ``mltrail audit``.

``users``, ``tokens`` and ``audit`` act on ``--store``: a server URL (``http(s)://``,
through its admin API with your saved token) or a database URI (``sqlite:///``,
``postgresql://``) opened directly, which is how the first admin is made on the
server's host::

    mltrail users add alice --role admin --store postgresql://db/mltrail   # prints a token
    mltrail login http://server:5000 --token mlt_...

A token is printed once, when it is made; the store keeps only its hash.
"""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.table import Table

from mltrail.cli._common import (
    JsonOpt,
    cell,
    console,
    err_console,
    fmt_ago,
    fmt_time,
    print_json,
)
from mltrail.errors import AuthenticationRequired, InvalidValueError

__all__ = ["audit", "login", "logout", "print_bootstrap_token", "tokens_app", "users_app"]

users_app = typer.Typer(help="Users of a server with --auth and their roles.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (shown once, stored hashed).", no_args_is_help=True)

StoreOpt = typer.Option(
    None,
    "--tracking-uri",
    "--store",
    "-u",
    envvar="MLTRAIL_TRACKING_URI",
    help="A server URL (http://host:5000, with your login) or the server's database "
    "(sqlite:///path or postgresql://..., opened directly).",
)
ProjectOpt = typer.Option("*", "--project", "-p", help="Project the role applies to ('*': all).")
NameArg = typer.Argument(..., help="User name.")
DaysOpt = typer.Option(None, "--expires-days", min=0.001, help="Days until it expires.")


# -- the two ways to reach users and tokens -----------------------------------------------


class _Backend:
    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release (a store stays open for the process, like every store)."""


class _Direct(_Backend):
    """The server's database, opened here (no authentication: whoever can open it rules)."""

    def __init__(self, uri: str) -> None:
        from mltrail.store import open_store

        self.store: Any = open_store(uri)

    def users(self) -> list[Any]:
        return list(self.store.list_users())

    def user(self, name: str) -> Any:
        return self.store.get_user(name)

    def add_user(self, name: str, roles: dict[str, str]) -> Any:
        return self.store.create_user(name, roles=roles, actor="cli")

    def grant(self, name: str, project: str, role: str) -> Any:
        return self.store.grant_role(name, project, role, actor="cli")

    def revoke(self, name: str, project: str) -> Any:
        return self.store.revoke_role(name, project, actor="cli")

    def disable(self, name: str, disabled: bool) -> Any:
        return self.store.set_user_disabled(name, disabled, actor="cli")

    def new_token(self, user: str | None, name: str, days: float | None) -> tuple[str, Any]:
        from mltrail.server.tokens import issue_token

        if user is None:
            raise InvalidValueError(
                "whose token? the database has no logged-in user",
                hint="give --user NAME",
            )
        return issue_token(
            self.store, user, name, expires_in=None if days is None else days * 86400
        )

    def tokens(self, user: str | None, revoked: bool) -> list[Any]:
        return list(self.store.list_tokens(user, include_revoked=revoked))

    def revoke_token(self, token_id: int) -> Any:
        return self.store.revoke_token(token_id)

    def audit(self, **filters: Any) -> list[Any]:
        return list(self.store.list_audit(**filters))


class _Remote(_Backend):
    """A server's admin API, with the token saved by ``mltrail login`` (or MLTRAIL_TOKEN)."""

    def __init__(self, url: str) -> None:
        from mltrail.store.http.credentials import token_for
        from mltrail.store.http.transport import Transport

        self.t = Transport(url, token=token_for(url))

    def close(self) -> None:
        self.t.close()

    def users(self) -> list[Any]:
        return list(self.t.call("GET", "/users"))

    def user(self, name: str) -> Any:
        return self.t.call("GET", f"/users/{_quote(name)}")

    def add_user(self, name: str, roles: dict[str, str]) -> Any:
        return self.t.call("POST", "/users", json={"name": name, "roles": roles})

    def grant(self, name: str, project: str, role: str) -> Any:
        path = f"/users/{_quote(name)}/roles/{_quote(project)}"
        return self.t.call("PUT", path, json={"role": role})

    def revoke(self, name: str, project: str) -> Any:
        return self.t.call("DELETE", f"/users/{_quote(name)}/roles/{_quote(project)}")

    def disable(self, name: str, disabled: bool) -> Any:
        return self.t.call("PATCH", f"/users/{_quote(name)}", json={"disabled": disabled})

    def new_token(self, user: str | None, name: str, days: float | None) -> tuple[str, Any]:
        path = "/tokens" if user is None else f"/users/{_quote(user)}/tokens"
        out = self.t.call("POST", path, json={"name": name, "expires_in_days": days})
        return str(out["token"]), out["record"]

    def tokens(self, user: str | None, revoked: bool) -> list[Any]:
        path = "/tokens" if user is None else f"/users/{_quote(user)}/tokens"
        return list(self.t.call("GET", path, params={"include_revoked": revoked}))

    def revoke_token(self, token_id: int) -> Any:
        return self.t.call("DELETE", f"/tokens/{token_id}")

    def audit(self, **filters: Any) -> list[Any]:
        return list(self.t.call("GET", "/audit", params=filters))


def _quote(part: str) -> str:
    from urllib.parse import quote

    return quote(part, safe="*")


def _admin(store: str | None) -> _Direct | _Remote:
    from mltrail.config import resolve_uri

    uri = resolve_uri(store)
    return _Remote(uri) if uri.startswith(("http://", "https://")) else _Direct(uri)


def _plain(record: Any) -> dict[str, Any]:
    from mltrail.wire import to_wire

    out: dict[str, Any] = to_wire(record)
    return out


def _roles_text(roles: dict[str, str]) -> str:
    return ", ".join(f"{p}:{r}" for p, r in sorted(roles.items())) or "-"


def _show_token(token: str, record: dict[str, Any]) -> None:
    err_console.print(
        f"token [bold]#{record['id']}[/] {record['name']!r} for {record['user']}"
        + (f", expires {fmt_time(record['expires_at'])}" if record.get("expires_at") else "")
        + " - shown this once, keep it secret:",
        soft_wrap=True,
    )
    typer.echo(token)


# -- login / logout ------------------------------------------------------------------------


def login(
    server_url: str = typer.Argument(..., help="The server, e.g. http://127.0.0.1:5000."),
    token: str | None = typer.Option(
        None, "--token", "-t", help="The API token (asked for, hidden, when not given)."
    ),
) -> None:
    """Check an API token against a server and save it for that server (mode 0600)."""
    from mltrail.config import resolve_uri
    from mltrail.store.http.credentials import save_token
    from mltrail.store.http.transport import Transport

    url = resolve_uri(server_url)
    if not url.startswith(("http://", "https://")):
        raise InvalidValueError(
            f"{server_url!r} is not a server URL", hint="e.g. http://127.0.0.1:5000"
        )
    if not token:
        token = typer.prompt("API token", hide_input=True).strip()
    transport = Transport(url, token=token)
    try:
        me = transport.call("GET", "/whoami")
    finally:
        transport.close()
    if not me.get("auth"):
        err_console.print(f"note: {url} runs without auth; the token is saved anyway")
    elif not me.get("authenticated"):
        raise AuthenticationRequired(f"{url} did not accept the token")
    path = save_token(url, token, user=me.get("name"))
    console.print(f"logged in to {url} as [bold]{me.get('name')}[/] (token saved in {path})")


def logout(
    server_url: str | None = typer.Argument(
        None, help="The server (default: MLTRAIL_TRACKING_URI, or the only one saved)."
    ),
) -> None:
    """Forget the token saved for a server."""
    import os

    from mltrail.config import resolve_uri
    from mltrail.store.http.credentials import forget_token, saved_servers

    url = server_url or os.environ.get("MLTRAIL_TRACKING_URI")
    if not url:
        saved = saved_servers()
        if len(saved) != 1:
            raise InvalidValueError(
                "which server?" if saved else "no token is saved",
                hint="give its URL: mltrail logout http://host:5000"
                + (f" (saved: {', '.join(saved)})" if saved else ""),
            )
        url = saved[0]
    url = resolve_uri(url)
    if forget_token(url):
        console.print(f"logged out of {url}")
    else:
        console.print(f"no token was saved for {url}")


# -- users ---------------------------------------------------------------------------------


def _print_user(user: dict[str, Any], as_json: bool = False) -> None:
    if as_json:
        print_json(user)
        return
    state = " (disabled)" if user.get("disabled") else ""
    console.print(f"[bold]{user['name']}[/]{state}: {_roles_text(user.get('roles') or {})}")


@users_app.command("ls")
def users_ls(as_json: bool = JsonOpt, store: str | None = StoreOpt) -> None:
    """List users with their roles (project:role; '*' is every project)."""
    with _admin(store) as backend:
        users = [_plain(u) for u in backend.users()]
    if as_json:
        print_json(users)
        return
    table = Table(title="users", header_style="bold")
    for col in ("name", "roles", "created", "by", "disabled"):
        table.add_column(col)
    for u in users:
        table.add_row(
            cell(u["name"]), cell(_roles_text(u["roles"])), fmt_time(u["created_at"]),
            cell(u["created_by"]), "yes" if u["disabled"] else "",
        )  # fmt: skip
    console.print(table)


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="User name."),
    role: str | None = typer.Option(None, "--role", "-r", help="reader|writer|maintainer|admin"),
    project: str = ProjectOpt,
    token: bool = typer.Option(True, "--token/--no-token", help="Also make a token (printed)."),
    as_json: bool = JsonOpt,
    store: str | None = StoreOpt,
) -> None:
    """Add a user (with a role), and print a first API token for them."""
    with _admin(store) as admin:
        user = _plain(admin.add_user(name, {project: role} if role else {}))
        secret, record = admin.new_token(name, "first", None) if token else (None, None)
    if as_json:
        print_json({**user, "token": secret, "token_record": record and _plain(record)})
        return
    _print_user(user)
    if secret is not None:
        _show_token(secret, _plain(record))


@users_app.command("show")
def users_show(name: str = NameArg, as_json: bool = JsonOpt, store: str | None = StoreOpt) -> None:
    """One user and their roles."""
    with _admin(store) as admin:
        user = _plain(admin.user(name))
    print_json(user) if as_json else _print_user(user)


@users_app.command("grant")
def users_grant(
    name: str = NameArg,
    role: str = typer.Argument(..., help="reader|writer|maintainer|admin"),
    project: str = ProjectOpt,
    as_json: bool = JsonOpt,
    store: str | None = StoreOpt,
) -> None:
    """Give a user a role in a project ('*': every project), replacing the one it had."""
    with _admin(store) as admin:
        _print_user(_plain(admin.grant(name, project, role)), as_json)


@users_app.command("revoke")
def users_revoke(
    name: str = NameArg,
    project: str = ProjectOpt,
    as_json: bool = JsonOpt,
    store: str | None = StoreOpt,
) -> None:
    """Take away a user's role in a project."""
    with _admin(store) as admin:
        _print_user(_plain(admin.revoke(name, project)), as_json)


@users_app.command("disable")
def users_disable(
    name: str = NameArg, as_json: bool = JsonOpt, store: str | None = StoreOpt
) -> None:
    """Disable a user: every token of theirs is refused (within seconds on every replica)."""
    with _admin(store) as admin:
        _print_user(_plain(admin.disable(name, True)), as_json)


@users_app.command("enable")
def users_enable(
    name: str = NameArg, as_json: bool = JsonOpt, store: str | None = StoreOpt
) -> None:
    """Enable a disabled user again."""
    with _admin(store) as admin:
        _print_user(_plain(admin.disable(name, False)), as_json)


# -- tokens --------------------------------------------------------------------------------


@tokens_app.command("create")
def tokens_create(
    name: str = typer.Option("token", "--name", "-n", help="What it is for (e.g. 'ci')."),
    expires_days: float | None = DaysOpt,
    user: str | None = typer.Option(
        None, "--user", help="Whose (an admin's choice; default: yours on a server)."
    ),
    as_json: bool = JsonOpt,
    store: str | None = StoreOpt,
) -> None:
    """Make an API token and print it (once: it cannot be shown again)."""
    with _admin(store) as admin:
        secret, record = admin.new_token(user, name, expires_days)
    if as_json:
        print_json({"token": secret, "record": _plain(record)})
        return
    _show_token(secret, _plain(record))


@tokens_app.command("ls")
def tokens_ls(
    user: str | None = typer.Option(None, "--user", help="Whose (default: yours)."),
    revoked: bool = typer.Option(False, "--revoked", help="Include revoked tokens."),
    as_json: bool = JsonOpt,
    store: str | None = StoreOpt,
) -> None:
    """List tokens: id, name, first characters, dates (never the token)."""
    with _admin(store) as backend:
        tokens = [_plain(t) for t in backend.tokens(user, revoked)]
    if as_json:
        print_json(tokens)
        return
    table = Table(title="tokens", header_style="bold")
    for col in ("id", "user", "name", "starts with", "created", "last used", "expires", "state"):
        table.add_column(col)
    now = time.time()
    for t in tokens:
        state = "revoked" if t["revoked_at"] else ""
        if not state and t["expires_at"] and t["expires_at"] <= now:
            state = "expired"
        table.add_row(
            str(t["id"]), cell(t["user"]), cell(t["name"]), cell(t["prefix"] + "..."),
            fmt_time(t["created_at"]), fmt_ago(t["last_used_at"]), fmt_time(t["expires_at"]),
            state,
        )  # fmt: skip
    console.print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: int = typer.Argument(..., help="The token's number (see mltrail tokens ls)."),
    as_json: bool = JsonOpt,
    store: str | None = StoreOpt,
) -> None:
    """Revoke a token (yours; an admin: anyone's). Refused everywhere within seconds."""
    with _admin(store) as admin:
        record = _plain(admin.revoke_token(token_id))
    if as_json:
        print_json(record)
        return
    console.print(f"revoked token #{record['id']} {record['name']!r} of {record['user']}")


# -- audit ---------------------------------------------------------------------------------


def audit(
    actor: str | None = typer.Option(None, "--actor", help="Only this user's requests."),
    project: str | None = typer.Option(None, "--project", "-p", help="Only this project."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="How many (newest first)."),
    as_json: bool = JsonOpt,
    store: str | None = StoreOpt,
) -> None:
    """The audit log: every write request to the server (admins)."""
    with _admin(store) as backend:
        entries = [_plain(e) for e in backend.audit(actor=actor, project=project, limit=limit)]
    if as_json:
        print_json(entries)
        return
    table = Table(title="audit log", header_style="bold")
    for col in ("time", "actor", "method", "path", "status", "project"):
        table.add_column(col)
    for e in entries:
        table.add_row(
            fmt_time(e["at"]), cell(e["actor"]), e["method"], cell(e["path"]),
            str(e["status"]), cell(e["project"]),
        )  # fmt: skip
    console.print(table)


def print_bootstrap_token(store_uri: str) -> None:
    """``mltrail server --auth``: when no admin exists, make one and print its token."""
    from mltrail.server.tokens import BOOTSTRAP_USER, bootstrap_admin
    from mltrail.store import open_store

    token = bootstrap_admin(open_store(store_uri))
    if token is None:
        return
    err_console.print(
        f"[bold yellow]No admin yet:[/] made the user [bold]{BOOTSTRAP_USER}[/] with this "
        "token, valid 24 h and shown once. Log in with it, then add real users and tokens:",
        soft_wrap=True,
    )
    err_console.print(f"  {token}", soft_wrap=True, highlight=False)
    err_console.print(
        "  mltrail login URL --token TOKEN; mltrail users add NAME --role admin --store URL",
        soft_wrap=True,
    )
