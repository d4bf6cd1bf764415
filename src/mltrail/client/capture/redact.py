"""Keeping secrets out of captured metadata.

Three rules, applied wherever captured text may carry a secret:

- an environment variable whose *name* contains KEY, TOKEN, SECRET, PASSWORD, PASSWD or
  CREDENTIAL (any case) has its value replaced by ``***``, even when allow-listed;
- credentials in URLs are dropped: ``https://user:tok@host/x`` -> ``https://host/x``
  (the whole user-info part, since tokens are often passed as the user name), and
  secret-looking query parameters (``?token=...``) become ``***``;
- in a command line, the value of an option named like a secret (``--api-key X``,
  ``--hf-token=X``, ``db.password=X``) becomes ``***``. The argv rule matches whole words
  only, so ``--key-dim 64`` or ``--max-tokens 512`` keep their values.

>>> strip_credentials("git remote https://bob:ghp_x@github.com/o/r.git")
'git remote https://github.com/o/r.git'
>>> redact_argv(["train.py", "--lr", "0.1", "--api-key", "s3cr3t"])
['train.py', '--lr', '0.1', '--api-key', '***']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

__all__ = [
    "REDACTED",
    "SECRET_NAME",
    "env_allowed",
    "redact_argv",
    "redact_env",
    "strip_credentials",
]

REDACTED = "***"
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_ARG_SECRET = re.compile(
    r"(?:^|[-_.])(?:api[-_]?key|access[-_]?key|private[-_]?key|secret(?:[-_]?key)?|"
    r"token|auth[-_]?token|password|passwd|credentials?)$",
    re.IGNORECASE,
)
# scheme://userinfo@ -- greedy up to the last '@' of the authority part
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s]*@")
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&;][^=&#\s]*(?:key|token|secret|password|passwd|credential|signature)"
    r"[^=&#\s]*=)[^&#\s]*",
    re.IGNORECASE,
)


def strip_credentials(text: str) -> str:
    """Drop user-info from every URL in ``text`` and blank secret query parameters.

    >>> strip_credentials("postgresql://ml:pw@db:5432/runs")
    'postgresql://db:5432/runs'
    >>> strip_credentials("https://h/x?sig=1&token=abc")
    'https://h/x?sig=1&token=***'
    """
    if "://" not in text:
        return text
    text = _URL_USERINFO.sub(r"\g<scheme>", text)
    return _QUERY_SECRET.sub(rf"\g<key>{REDACTED}", text)


def env_allowed(name: str, allow: Iterable[str]) -> bool:
    """Whether ``name`` matches one of the allow-list entries (exact names or globs)."""
    return any(fnmatchcase(name, pattern) for pattern in allow)


def redact_env(environ: Mapping[str, str], allow: Iterable[str]) -> dict[str, str]:
    """The allow-listed variables of ``environ``, secrets redacted, sorted by name.

    >>> redact_env({"MLTRAIL_API_KEY": "k", "TZ": "UTC", "HOME": "/root"}, ["MLTRAIL_*", "TZ"])
    {'MLTRAIL_API_KEY': '***', 'TZ': 'UTC'}
    """
    patterns = tuple(allow)
    out: dict[str, str] = {}
    for name in sorted(environ):
        if not env_allowed(name, patterns):
            continue
        out[name] = REDACTED if SECRET_NAME.search(name) else strip_credentials(environ[name])
    return out


def _option_name(arg: str) -> str:
    return arg.lstrip("-")


def redact_argv(argv: Iterable[str]) -> list[str]:
    """A copy of ``argv`` with secret option values and URL credentials removed."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            hide_next = False
            if not arg.startswith("-"):
                out.append(REDACTED)
                continue
        name, eq, _value = arg.partition("=")
        if eq and _ARG_SECRET.search(_option_name(name)):
            out.append(f"{name}={REDACTED}")
        elif arg.startswith("-") and not eq and _ARG_SECRET.search(_option_name(arg)):
            out.append(arg)
            hide_next = True
        else:
            out.append(strip_credentials(arg))
    return out
