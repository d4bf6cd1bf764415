"""API tokens: made once, shown once, stored only as a hash.

A token is ``mlt_`` + 32 random bytes (``secrets.token_urlsafe``: 256 bits). The store
keeps its SHA-256 and its first characters (to recognise it in a list), never the
token. A plain SHA-256 is enough here, unlike for passwords: a slow, salted hash
(bcrypt, argon2) defends *guessable* secrets against a brute force over a stolen
table, but nobody can enumerate 2**256 random tokens, however fast the hash; and an
unsalted hash can be looked up by index in one query, where a slow hash would cost
about 100 ms of CPU on every request.

:func:`principal_for_token` runs on every request with auth on, so it keeps what it
found in a per-process cache for :data:`CACHE_TTL` seconds (a dict lookup, no
query). Revoking a token, disabling a user or changing a role therefore takes
effect within ``CACHE_TTL`` seconds on every replica (at once in the process that
made the change, which clears its cache). An expiry is exact: a cached entry never
outlives its token. ``last_used_at`` is written at most once per
:data:`TOUCH_EVERY` seconds per token.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from typing import Any

from mltrail.server.auth import Principal

__all__ = [
    "BOOTSTRAP_USER",
    "CACHE_TTL",
    "PREFIX",
    "TOUCH_EVERY",
    "bootstrap_admin",
    "forget_tokens",
    "hash_token",
    "issue_token",
    "new_token",
    "principal_for_token",
]

PREFIX = "mlt_"
CACHE_TTL = 5.0  # seconds a resolved token is trusted without asking the store
TOUCH_EVERY = 60.0  # seconds between two writes of a token's last_used_at
_SHOWN = 8  # characters of a token kept in clear (with the prefix), to recognise it
_MAX_CACHED = 10_000
BOOTSTRAP_USER = "admin"
BOOTSTRAP_EXPIRY = 24 * 3600.0  # seconds: long enough to make real users and tokens

_lock = threading.Lock()
# (store uri, token hash) -> (principal or None, monotonic time it is good until)
_cache: dict[tuple[str, str], tuple[Principal | None, float]] = {}


def new_token() -> str:
    """A fresh random token (256 bits)."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What the store keeps of a token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(
    store: Any, user: str, name: str, *, expires_in: float | None = None
) -> tuple[str, Any]:
    """Make a token for ``user``; returns ``(token, ApiToken)``. Show the token once:
    it cannot be read back."""
    token = new_token()
    expires_at = None if expires_in is None else time.time() + expires_in
    record = store.create_token(
        user, name, hash_token(token), token[: len(PREFIX) + _SHOWN], expires_at=expires_at
    )
    return token, record


def forget_tokens() -> None:
    """Drop this process's cache (after a revocation or a role change made here)."""
    with _lock:
        _cache.clear()


def principal_for_token(store: Any, token: str) -> Principal | None:
    """The user a token belongs to, with their roles; None for an unknown, revoked or
    expired token or a disabled user."""
    if not token.startswith(PREFIX) or len(token) > 256:
        return None
    key = (str(getattr(store, "uri", id(store))), hash_token(token))
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit[1] > now:
        return hit[0]
    wall = time.time()
    owner = store.token_owner(key[1], wall)
    until = now + CACHE_TTL
    principal: Principal | None = None
    if owner is not None:
        principal = Principal(owner.user, dict(owner.roles), authenticated=True)
        if owner.expires_at is not None:
            until = min(until, now + (owner.expires_at - wall))
        if owner.last_used_at is None or owner.last_used_at < wall - TOUCH_EVERY:
            store.touch_token(owner.token_id, wall, TOUCH_EVERY)
    with _lock:
        if len(_cache) >= _MAX_CACHED:
            _cache.clear()  # a flood of made-up tokens must not grow memory without end
        _cache[key] = (principal, until)
    return principal


def bootstrap_admin(store: Any) -> str | None:
    """When no enabled user is a global admin: make (or re-enable) the user ``admin``
    with the global admin role and return a token for it, valid for a day; else None.

    ``mltrail server --auth`` calls this at start and prints the token once, so the
    first admin can log in and create users and long-lived tokens. Replicas starting at
    once race harmlessly: one creates the user, the others only add a token.
    """
    from mltrail.errors import AlreadyExists

    if store.count_admins() > 0:
        return None
    try:
        store.create_user(BOOTSTRAP_USER, roles={"*": "admin"}, actor="bootstrap")
    except AlreadyExists:
        store.set_user_disabled(BOOTSTRAP_USER, False, actor="bootstrap")
        store.grant_role(BOOTSTRAP_USER, "*", "admin", actor="bootstrap")
    token, _ = issue_token(store, BOOTSTRAP_USER, "bootstrap", expires_in=BOOTSTRAP_EXPIRY)
    return token
