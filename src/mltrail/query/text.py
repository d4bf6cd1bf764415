"""Print a tree back as canonical query text: ``parse(to_text(tree)) == tree``."""

from __future__ import annotations

import math
from typing import NoReturn

from mltrail.query.ast import (
    And,
    Attribute,
    Compare,
    Exists,
    Expr,
    Field,
    In,
    IsNull,
    Like,
    Meta,
    Metric,
    Not,
    Or,
    OrderBy,
    Param,
    Tag,
    Value,
)
from mltrail.query.lexer import KEYWORDS
from mltrail.query.parser import NAMESPACE_ALIASES

__all__ = ["to_text"]

_BARE_KEY = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-/")
# Words that cannot stand alone as an attribute: the parser reads them otherwise.
_RESERVED = KEYWORDS | NAMESPACE_ALIASES.keys()
_STRING_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def to_text(node: Expr | Field | OrderBy) -> str:
    """The canonical query text of a condition, a field or a sort key.

    >>> from mltrail.query import parse
    >>> to_text(parse("NOT tags.archived AND params.lr == 1e-3"))
    'not tags.archived and params.lr = 0.001'
    """
    if isinstance(node, OrderBy):
        return _field(node.field) + (" desc" if node.descending else "")
    if isinstance(node, Attribute | Metric | Param | Tag | Meta):
        return _field(node)
    return _expr(node)


def _expr(node: Expr) -> str:
    if isinstance(node, And):
        return " and ".join(_operand(op, wrap=(And, Or)) for op in node.operands)
    if isinstance(node, Or):
        return " or ".join(_operand(op, wrap=(Or,)) for op in node.operands)
    if isinstance(node, Not):
        return "not " + _operand(node.operand, wrap=(And, Or))
    if isinstance(node, Compare):
        return f"{_field(node.field)} {node.op} {_value(node.value)}"
    if isinstance(node, In):
        values = ", ".join(_value(v) for v in node.values)
        return f"{_field(node.field)} {'not in' if node.negated else 'in'} ({values})"
    if isinstance(node, Like):
        op = ("not " if node.negated else "") + ("ilike" if node.case_insensitive else "like")
        return f"{_field(node.field)} {op} {_value(node.pattern)}"
    if isinstance(node, IsNull):
        return f"{_field(node.field)} is {'not ' if node.negated else ''}null"
    if isinstance(node, Exists):
        return _field(node.field)
    _unreachable(node)


def _operand(node: Expr, wrap: tuple[type[And] | type[Or], ...]) -> str:
    text = _expr(node)
    return f"({text})" if isinstance(node, wrap) else text


def _field(field: Field) -> str:
    if isinstance(field, Attribute):
        name = field.name
        if not (name.isascii() and name.isidentifier()):
            raise ValueError(f"attribute name {name!r} is not an identifier")
        return f"attributes.{name}" if name.lower() in _RESERVED else name
    if isinstance(field, Metric):
        text = "metrics." + _key(field.key)
        return text if field.agg == "last" else f"{field.agg}({text})"
    if isinstance(field, Param):
        return "params." + _key(field.key)
    if isinstance(field, Tag):
        return "tags." + _key(field.key)
    if isinstance(field, Meta):
        return f"{field.namespace}.{_key(field.key)}"
    _unreachable(field)


def _key(key: str) -> str:
    if not key:
        raise ValueError("a key cannot be empty")
    if all(part and _BARE_KEY.issuperset(part) for part in key.split(".")):
        return key
    return "`" + key.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _value(value: Value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no query literal")
        return repr(value)
    return "'" + "".join(_STRING_ESCAPES.get(ch, ch) for ch in value) + "'"


def _unreachable(node: NoReturn) -> NoReturn:
    raise TypeError(f"not a query node: {node!r}")
