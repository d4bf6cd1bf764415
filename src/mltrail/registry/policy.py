"""The registry's policy: stages, transitions, protection, roles, naming, metadata schema.

One JSON document per registry (stored in the metadata store, so every client and
server replica reads the same rules; each change is audited)::

    {
      "stages": ["development", "staging", "production", "archived"],
      "initial_stage": "development",
      "archive_stage": "archived",
      "transitions": null,                 # null: any stage to any other
      "exclusive_stages": ["production"],  # promotion archives the previous holder
      "protected": {
        "stage:production": {"roles": ["maintainer", "admin"], "approval": false}
      },
      "roles": {"alice": ["admin"]},        # user -> roles
      "default_roles": ["maintainer"],      # users not listed
      "name_pattern": "^[a-z0-9]+(?:_[a-z0-9]+)*(?:-[a-z0-9]+(?:_[a-z0-9]+)*)+$",
      "metadata_schema": null              # null: the default schema
    }

Roles are ``reader``, ``writer``, ``maintainer``, ``admin`` (admin passes every rule).
Out of the box one person on a laptop can do everything (everyone is a maintainer),
and a protected stage still demands valid metadata; a team lists its people under
``roles``, lowers ``default_roles`` to ``["writer"]`` and turns ``approval`` on.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mltrail.errors import InvalidValueError, PermissionDenied

__all__ = ["DEFAULT_POLICY", "ROLES", "Actor", "Policy", "Rule", "current_user"]

ROLES = ("reader", "writer", "maintainer", "admin")

DEFAULT_NAME_PATTERN = r"^[a-z0-9]+(?:_[a-z0-9]+)*(?:-[a-z0-9]+(?:_[a-z0-9]+)*)+$"

DEFAULT_POLICY: dict[str, Any] = {
    "stages": ["development", "staging", "production", "archived"],
    "initial_stage": "development",
    "archive_stage": "archived",
    "transitions": None,
    "exclusive_stages": ["production"],
    "protected": {"stage:production": {"roles": ["maintainer", "admin"], "approval": False}},
    "roles": {},
    "default_roles": ["maintainer"],
    "name_pattern": DEFAULT_NAME_PATTERN,
    "metadata_schema": None,
}

_KEYS = set(DEFAULT_POLICY)


def current_user() -> str:
    """Who is acting: ``MLTRAIL_USER``, else the login name."""
    name = os.environ.get("MLTRAIL_USER")
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True)
class Actor:
    name: str
    roles: frozenset[str]

    def has_any(self, roles: tuple[str, ...]) -> bool:
        return "admin" in self.roles or bool(self.roles & set(roles))


@dataclass(frozen=True)
class Rule:
    """Protection of one stage or alias: who may move it, and whether a second person
    must approve."""

    roles: tuple[str, ...]
    approval: bool


@dataclass(frozen=True)
class Policy:
    stages: tuple[str, ...]
    initial_stage: str
    archive_stage: str
    transitions: dict[str, tuple[str, ...]] | None
    exclusive_stages: frozenset[str]
    protected: dict[str, Rule]
    roles: dict[str, frozenset[str]]
    default_roles: frozenset[str]
    name_pattern: str
    metadata_schema: dict[str, Any] | None
    document: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any] | None) -> Policy:
        """Build and check a policy; unknown keys and inconsistent stages are errors."""
        merged = dict(DEFAULT_POLICY)
        if doc:
            unknown = sorted(set(doc) - _KEYS)
            if unknown:
                raise InvalidValueError(
                    f"unknown registry policy keys: {', '.join(unknown)}",
                    hint=f"known keys: {', '.join(sorted(_KEYS))}",
                )
            merged.update(doc)
        stages = tuple(_strings(merged["stages"], "stages"))
        if len(set(stages)) != len(stages) or not stages:
            raise InvalidValueError("policy 'stages' must be a non-empty list without repeats")
        for key in ("initial_stage", "archive_stage"):
            if merged[key] not in stages:
                raise InvalidValueError(
                    f"policy {key!r} is {merged[key]!r}, which is not one of the stages "
                    f"{list(stages)}"
                )
        transitions = None
        if merged["transitions"] is not None:
            transitions = {}
            for src, dsts in dict(merged["transitions"]).items():
                targets = tuple(_strings(dsts, f"transitions.{src}"))
                for name in (src, *targets):
                    if name not in stages:
                        raise InvalidValueError(
                            f"policy transitions name the stage {name!r}, which is not one of "
                            f"{list(stages)}"
                        )
                transitions[src] = targets
        exclusive = frozenset(_strings(merged["exclusive_stages"], "exclusive_stages"))
        for name in exclusive - set(stages):
            raise InvalidValueError(f"exclusive stage {name!r} is not one of {list(stages)}")
        protected: dict[str, Rule] = {}
        for target, rule in dict(merged["protected"]).items():
            kind, _, what = str(target).partition(":")
            if kind not in ("stage", "alias") or not what:
                raise InvalidValueError(
                    f"protected entry {target!r} must look like 'stage:NAME' or 'alias:NAME'"
                )
            if kind == "stage" and what not in stages:
                raise InvalidValueError(f"protected stage {what!r} is not one of {list(stages)}")
            roles = tuple(_strings(rule.get("roles", ["maintainer", "admin"]), "roles"))
            _check_roles(roles, f"protected[{target!r}].roles")
            protected[target] = Rule(roles=roles, approval=bool(rule.get("approval", False)))
        users: dict[str, frozenset[str]] = {}
        for user, roles in dict(merged["roles"]).items():
            granted = tuple(_strings(roles, f"roles.{user}"))
            _check_roles(granted, f"roles[{user!r}]")
            users[str(user)] = frozenset(granted)
        default_roles = tuple(_strings(merged["default_roles"], "default_roles"))
        _check_roles(default_roles, "default_roles")
        pattern = str(merged["name_pattern"])
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InvalidValueError(
                f"policy name_pattern is not a regular expression: {exc}"
            ) from None
        schema = merged["metadata_schema"]
        if schema is not None and not isinstance(schema, dict):
            raise InvalidValueError("policy metadata_schema must be a JSON Schema object or null")
        if schema is not None:
            from jsonschema import Draft202012Validator
            from jsonschema.exceptions import SchemaError

            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                raise InvalidValueError(
                    f"policy metadata_schema is invalid: {exc.message}"
                ) from None
        return cls(
            stages=stages, initial_stage=merged["initial_stage"],
            archive_stage=merged["archive_stage"], transitions=transitions,
            exclusive_stages=exclusive, protected=protected, roles=users,
            default_roles=frozenset(default_roles), name_pattern=pattern,
            metadata_schema=schema, document=merged,
        )  # fmt: skip

    # -- questions the registry asks ------------------------------------------------

    def actor(self, name: str | None = None, roles: frozenset[str] | None = None) -> Actor:
        """The acting user with their roles (given by the server, else from the policy)."""
        who = name or current_user()
        if roles is None:
            roles = self.roles.get(who, self.default_roles)
        return Actor(who, roles)

    def can_edit_policy(self, actor: Actor) -> bool:
        """Admins edit the policy; until someone is named admin, anyone may (bootstrap)."""
        has_admin = any("admin" in r for r in self.roles.values())
        return "admin" in actor.roles or not has_admin

    def check_stage(self, stage: str) -> None:
        if stage not in self.stages:
            raise InvalidValueError(
                f"{stage!r} is not a stage of this registry",
                hint=f"stages: {', '.join(self.stages)} (see: mltrail models policy)",
            )

    def allows(self, src: str, dst: str) -> bool:
        if self.transitions is None:
            return True
        return dst in self.transitions.get(src, ())

    def rule(self, kind: str, name: str) -> Rule | None:
        return self.protected.get(f"{kind}:{name}")

    def require(self, actor: Actor, kind: str, name: str, what: str) -> Rule | None:
        """The rule protecting ``kind:name``; PermissionDenied if ``actor`` may not act."""
        rule = self.rule(kind, name)
        if rule is not None and not actor.has_any(rule.roles):
            has = ", ".join(sorted(actor.roles)) or "none"
            raise PermissionDenied(
                f"{actor.name} may not {what}: {kind} {name!r} is protected and needs one of "
                f"the roles {', '.join(rule.roles)} (has: {has})",
                hint="ask an admin to grant a role in the registry policy (mltrail models policy)",
            )
        return rule

    def check_name(self, name: str) -> None:
        if not re.fullmatch(self.name_pattern, name):
            raise InvalidValueError(
                f"model name {name!r} does not follow this registry's naming pattern "
                f"{self.name_pattern!r}",
                hint="the default pattern is <task>-<architecture> in lower case, e.g. "
                "'churn-xgboost' or 'image_classification-resnet50'",
            )


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise InvalidValueError(f"policy {what!r} must be a list of strings, got {value!r}")
    return list(value)


def _check_roles(roles: tuple[str, ...], what: str) -> None:
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise InvalidValueError(
            f"{what} names unknown roles {bad}", hint=f"roles are: {', '.join(ROLES)}"
        )
