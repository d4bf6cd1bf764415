"""Where the remote client finds its API token: ``MLTRAIL_TOKEN``, else the user's
credentials file written by ``mltrail login``.

The file is ``$XDG_CONFIG_HOME/mltrail/credentials.json`` (``~/.config/...`` when the
variable is unset), a JSON object ``{"servers": {URL: {"token": ...}}}`` keyed by the
server's URL without a trailing slash. It is written with mode 0600 in a directory
of mode 0700 (through a temporary file renamed over it, so it is never half-written
nor, for a moment, readable by others).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["credentials_path", "forget_token", "save_token", "saved_servers", "token_for"]

FILE_MODE = 0o600
DIR_MODE = 0o700


def credentials_path() -> Path:
    """The user's credentials file (it may not exist yet)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mltrail" / "credentials.json"


def _key(url: str) -> str:
    return url.strip().rstrip("/")


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"servers": {}}
    except (OSError, ValueError):
        return {"servers": {}}  # unreadable or damaged: as if empty (login rewrites it)
    if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
        return {"servers": {}}
    return data


def _store(path: Path, data: dict[str, Any]) -> None:
    if not path.parent.exists():
        path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        os.chmod(path.parent, DIR_MODE)  # mkdir's mode is masked by the umask
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # an old temp file, or the umask, must not widen it
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def token_for(base_url: str) -> str | None:
    """The token to send to the server at ``base_url``: ``MLTRAIL_TOKEN``, else the one
    ``mltrail login`` saved for it, else None."""
    env = os.environ.get("MLTRAIL_TOKEN")
    if env:
        return env
    entry = _load(credentials_path())["servers"].get(_key(base_url))
    token = entry.get("token") if isinstance(entry, dict) else None
    return token if isinstance(token, str) and token else None


def save_token(base_url: str, token: str, *, user: str | None = None) -> Path:
    """Remember ``token`` for the server at ``base_url`` (replacing an older one)."""
    path = credentials_path()
    data = _load(path)
    data["servers"][_key(base_url)] = {"token": token, "user": user}
    _store(path, data)
    return path


def forget_token(base_url: str) -> bool:
    """Forget the token saved for ``base_url``; False when there was none."""
    path = credentials_path()
    data = _load(path)
    if data["servers"].pop(_key(base_url), None) is None:
        return False
    _store(path, data)
    return True


def saved_servers() -> list[str]:
    """The servers a token is saved for."""
    return sorted(_load(credentials_path())["servers"])
