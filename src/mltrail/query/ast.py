"""The typed tree a query parses into: frozen dataclasses, compared by value.

Two families, each a union alias to ``match`` on exhaustively:

* :data:`Field`, what a condition looks at: :class:`Attribute`, :class:`Metric`,
  :class:`Param`, :class:`Tag`, :class:`Meta`.
* :data:`Expr`, a condition: :class:`And`, :class:`Or`, :class:`Not` over the
  predicates :class:`Compare`, :class:`In`, :class:`Like`, :class:`IsNull` and
  :class:`Exists`.

Negated forms (``!=``, ``not in``, ``not like``, ``is not null``) are flags on their
predicate, not a :class:`Not` around it: ``tags.team != 'cv'`` matches only runs that
have the tag, ``not tags.team = 'cv'`` also those that lack it.

Literal values are plain Python objects (:data:`Value`). Mind that Python compares
``True == 1`` and ``1 == 1.0``: check ``isinstance(value, bool)`` before ``int``.

>>> Compare(Metric("val_acc"), ">", 0.9)
Compare(field=Metric(key='val_acc', agg='last'), op='>', value=0.9)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "AGGREGATES",
    "META_NAMESPACES",
    "Aggregate",
    "And",
    "Attribute",
    "Compare",
    "CompareOp",
    "Exists",
    "Expr",
    "Field",
    "In",
    "IsNull",
    "Like",
    "Meta",
    "MetaNamespace",
    "Metric",
    "Not",
    "Or",
    "OrderBy",
    "Param",
    "Tag",
    "Value",
]

Value: TypeAlias = str | int | float | bool | None
"""A literal: string, int, float, ``true``/``false`` or ``null``."""

Aggregate: TypeAlias = Literal["last", "min", "max", "count"]
AGGREGATES: tuple[Aggregate, ...] = ("last", "min", "max", "count")

MetaNamespace: TypeAlias = Literal["system", "git", "env", "metadata"]
META_NAMESPACES: tuple[MetaNamespace, ...] = ("system", "git", "env", "metadata")

CompareOp: TypeAlias = Literal["=", "!=", "<", "<=", ">", ">="]


# -- fields ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attribute:
    """A column of the searched entity itself: ``status``, ``created``, ``name``..."""

    name: str


@dataclass(frozen=True, slots=True)
class Metric:
    """``metrics.<key>`` (the last value) or ``min|max|count|last(metrics.<key>)``."""

    key: str
    agg: Aggregate = "last"


@dataclass(frozen=True, slots=True)
class Param:
    """``params.<key>``, also written ``config.<key>``; nested keys keep their dots."""

    key: str


@dataclass(frozen=True, slots=True)
class Tag:
    """``tags.<key>``."""

    key: str


@dataclass(frozen=True, slots=True)
class Meta:
    """Captured or attached metadata: ``system.<key>``, ``git.<key>``, ``env.<key>``,
    ``metadata.<key>`` (artifacts)."""

    namespace: MetaNamespace
    key: str


Field: TypeAlias = Attribute | Metric | Param | Tag | Meta


# -- predicates ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Compare:
    """``field op value``; ``==`` parses as ``=`` and ``<>`` as ``!=``. Never null."""

    field: Field
    op: CompareOp
    value: str | int | float | bool


@dataclass(frozen=True, slots=True)
class In:
    """``field [not] in (v1, v2, ...)``: at least one value, never null."""

    field: Field
    values: tuple[str | int | float | bool, ...]
    negated: bool = False

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("In needs at least one value")


@dataclass(frozen=True, slots=True)
class Like:
    """``field [not] like|ilike 'pattern'``; ``%`` and ``_`` are wildcards, and the
    pattern keeps ``\\%`` and ``\\_`` (backslash escapes them)."""

    field: Field
    pattern: str
    negated: bool = False
    case_insensitive: bool = False


@dataclass(frozen=True, slots=True)
class IsNull:
    """``field is null`` (``negated``: ``is not null``)."""

    field: Field
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Exists:
    """A bare field used as a condition (``tags.archived``): it exists / is truthy."""

    field: Field


# -- connectives -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class And:
    """All operands hold. Chains are flat; parentheses in the query nest."""

    operands: tuple[Expr, ...]

    def __post_init__(self) -> None:
        if len(self.operands) < 2:
            raise ValueError("And needs at least two operands")


@dataclass(frozen=True, slots=True)
class Or:
    """Any operand holds. Chains are flat; parentheses in the query nest."""

    operands: tuple[Expr, ...]

    def __post_init__(self) -> None:
        if len(self.operands) < 2:
            raise ValueError("Or needs at least two operands")


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr


Expr: TypeAlias = And | Or | Not | Compare | In | Like | IsNull | Exists


@dataclass(frozen=True, slots=True)
class OrderBy:
    """One sort key of ``order_by``: ``metrics.val_acc desc``."""

    field: Field
    descending: bool = False
