"""Recursive-descent parser: tokens -> :mod:`mltrail.query.ast`.

Precedence: ``not`` binds tighter than ``and``, ``and`` tighter than ``or``. A chain of
one connective is one flat node; parentheses make a nested one, so the tree keeps the
query's shape and :func:`~mltrail.query.text.to_text` can print it back exactly.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from typing import NoReturn, cast

from mltrail.errors import QuerySyntaxError
from mltrail.query.ast import (
    AGGREGATES,
    And,
    Attribute,
    Compare,
    CompareOp,
    Exists,
    Expr,
    Field,
    In,
    IsNull,
    Like,
    Meta,
    MetaNamespace,
    Metric,
    Not,
    Or,
    OrderBy,
    Param,
    Tag,
)
from mltrail.query.lexer import Token, tokenize

__all__ = ["MAX_DEPTH", "NAMESPACES", "NAMESPACE_ALIASES", "parse", "parse_order_by"]

MAX_DEPTH = 100

# Spelling in a query -> canonical namespace. "attributes" names an attribute
# explicitly (MLflow's form), e.g. when it is spelled like a keyword.
NAMESPACE_ALIASES = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "parameters": "params",
    "parameter": "params",
    "config": "params",
    "tags": "tags",
    "tag": "tags",
    "system": "system",
    "git": "git",
    "env": "env",
    "metadata": "metadata",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
}
NAMESPACES = frozenset({"metrics", "params", "tags", "system", "git", "env", "metadata"})
_OPERATOR_WORDS = ("in", "like", "ilike", "is", "not")


def parse(
    query: str,
    *,
    attributes: Collection[str] | None = None,
    namespaces: Collection[str] | None = None,
) -> Expr | None:
    """Parse a search expression; ``None`` for an empty one (match everything).

    ``attributes``: the bare names allowed (``status``...), matched case-insensitively
    and returned in the spelling given here; ``None`` allows any name. ``namespaces``:
    the prefixes allowed (of :data:`NAMESPACES`; ``metrics`` also allows aggregates);
    ``None`` allows all. Raises :class:`~mltrail.errors.QuerySyntaxError`.

    >>> parse("metrics.val_acc > 0.9 and not tags.archived")
    And(operands=(Compare(field=Metric(key='val_acc', agg='last'), op='>', value=0.9), \
Not(operand=Exists(field=Tag(key='archived')))))
    """
    parser = _Parser(query, attributes, namespaces)
    if parser.peek.kind == "eof":
        return None
    expr = parser.or_expr()
    parser.expect_end()
    return expr


def parse_order_by(
    order_by: str | Iterable[str],
    *,
    attributes: Collection[str] | None = None,
    namespaces: Collection[str] | None = None,
) -> list[OrderBy]:
    """Parse sort keys: ``field [asc|desc]``, several per string with commas.

    >>> parse_order_by(["metrics.val_acc desc", "created"])
    [OrderBy(field=Metric(key='val_acc', agg='last'), descending=True), \
OrderBy(field=Attribute(name='created'), descending=False)]
    """
    items = [order_by] if isinstance(order_by, str) else list(order_by)
    result: list[OrderBy] = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"order_by items must be strings, not {type(item).__name__}")
        parser = _Parser(item, attributes, namespaces)
        while not parser.at_end():
            start = parser.peek.pos
            field = parser.field()
            descending = False
            token = parser.peek
            if token.kind == "name" and token.text.lower() in ("asc", "desc"):
                descending = token.text.lower() == "desc"
                parser.advance()
            result.append(OrderBy(field, descending))
            source = repr(item[start : parser.prev.pos + len(parser.prev.text)])
            token = parser.advance()
            if token.kind == ",":
                if parser.at_end():
                    parser.fail("expected a field to sort by after ','")
            elif token.kind != "eof":
                parser.fail(f"expected 'asc', 'desc' or ',' after {source}{_got(token)}", token)
    return result


class _Parser:
    def __init__(
        self,
        query: str,
        attributes: Collection[str] | None,
        namespaces: Collection[str] | None,
    ) -> None:
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, not {type(query).__name__}")
        self.query = query
        self.tokens = tokenize(query)
        self.i = 0
        self.depth = 0
        self.attributes = None if attributes is None else _attribute_map(attributes)
        if namespaces is not None and not NAMESPACES.issuperset(namespaces):
            unknown = sorted(set(namespaces) - NAMESPACES)
            raise ValueError(f"unknown namespaces {unknown}; known: {sorted(NAMESPACES)}")
        self.namespaces = NAMESPACES if namespaces is None else frozenset(namespaces)

    # -- token stream ------------------------------------------------------------------

    @property
    def peek(self) -> Token:
        return self.tokens[self.i]

    @property
    def prev(self) -> Token:
        return self.tokens[self.i - 1]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind != "eof":
            self.i += 1
        return token

    def at_end(self) -> bool:
        return self.peek.kind == "eof"

    def at_keyword(self, *words: str) -> bool:
        return self.peek.kind == "keyword" and self.peek.value in words

    def fail(self, reason: str, token: Token | None = None) -> NoReturn:
        raise QuerySyntaxError(reason, self.query, (token or self.peek).pos)

    def enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"query nests too deeply (more than {MAX_DEPTH} levels)", token)

    def expect_end(self) -> None:
        token = self.peek
        if token.kind == ")":
            self.fail("unmatched ')'")
        if token.kind != "eof":
            self.fail(f"expected 'and' or 'or' before {_show(token)}")

    # -- conditions --------------------------------------------------------------------

    def or_expr(self) -> Expr:
        operands = [self.and_expr()]
        while self.at_keyword("or"):
            self.advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self) -> Expr:
        operands = [self.not_expr()]
        while self.at_keyword("and"):
            self.advance()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def not_expr(self) -> Expr:
        depth = self.depth
        nots = 0
        while self.at_keyword("not"):
            self.enter(self.advance())
            nots += 1
        expr = self.primary()
        for _ in range(nots):
            expr = Not(expr)
        self.depth = depth
        return expr

    def primary(self) -> Expr:
        token = self.peek
        if token.kind == "(":
            self.enter(self.advance())
            expr = self.or_expr()
            if self.peek.kind == "eof":
                self.fail(f"missing ')' to close the '(' from position {token.pos}")
            if self.peek.kind != ")":
                self.fail(f"expected 'and', 'or' or ')' before {_show(self.peek)}")
            self.advance()
            self.depth -= 1
            return expr
        return self.predicate()

    def predicate(self) -> Expr:
        start = self.peek.pos
        field = self.field()
        token = self.peek
        if token.kind == "op":
            self.advance()
            value = self.value(after=token)
            if value is None:
                if token.value in ("=", "!="):
                    good = "is null" if token.value == "=" else "is not null"
                    self.fail(f"use '{good}' to compare with null", self.prev)
                self.fail(f"cannot compare with null using {token.text!r}", self.prev)
            return Compare(field, cast(CompareOp, token.value), value)
        if token.kind == "keyword" and token.value == "is":
            self.advance()
            negated = self.at_keyword("not")
            if negated:
                self.advance()
            if not self.at_keyword("null"):
                after = "'is not'" if negated else "'is'"
                self.fail(f"expected 'null' after {after}{_got(self.peek)}")
            self.advance()
            return IsNull(field, negated)
        negated = token.kind == "keyword" and token.value == "not"
        if negated:
            self.advance()
            if not self.at_keyword("in", "like", "ilike"):
                self.fail(f"expected 'in', 'like' or 'ilike' after 'not'{_got(self.peek)}")
        if self.at_keyword("in"):
            self.advance()
            return In(field, self.value_list(), negated)
        if self.at_keyword("like", "ilike"):
            op = self.advance()
            pattern = self.peek
            if pattern.kind != "string":
                self.fail(f"expected a quoted pattern after {op.text!r}{_got(pattern)}")
            self.advance()
            return Like(field, str(pattern.value), negated, op.value == "ilike")
        if token.kind in ("eof", ")") or (token.kind == "keyword" and token.value in ("and", "or")):
            return Exists(field)
        hint = ""
        if token.kind == "name":
            close = difflib.get_close_matches(token.text.lower(), _OPERATOR_WORDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        source = repr(self.query[start : self.prev.pos + len(self.prev.text)])
        self.fail(f"expected an operator after {source}, got {_show(token)}{hint}")

    def value(self, after: Token) -> str | int | float | bool | None:
        token = self.peek
        if token.kind in ("string", "number"):
            self.advance()
            return token.value
        if token.kind == "keyword" and token.value in ("true", "false", "null"):
            self.advance()
            return None if token.value == "null" else token.value == "true"
        extra = ""
        if token.kind == "name":
            extra = " (comparing two fields is not supported; quote a string value)"
        self.fail(f"expected a value after {after.text!r}{_got(token)}{extra}")

    def value_list(self) -> tuple[str | int | float | bool, ...]:
        opening = self.peek
        if opening.kind != "(":
            self.fail(f"expected '(' after 'in'{_got(opening)}")
        self.advance()
        values: list[str | int | float | bool] = []
        while True:
            value = self.value(after=self.prev)
            if value is None:
                self.fail("null cannot be in a list; use 'is null'", self.prev)
            values.append(value)
            token = self.advance()
            if token.kind == ")":
                return tuple(values)
            if token.kind != ",":
                if token.kind == "eof":
                    self.fail(f"missing ')' to close the '(' from position {opening.pos}", token)
                self.fail(f"expected ',' or ')' in the list{_got(token)}", token)

    # -- fields ------------------------------------------------------------------------

    def field(self) -> Field:
        token = self.peek
        if token.kind != "name":
            if token.kind == "eof":
                after = f" after {_show(self.prev)}" if self.i else ""
                self.fail(f"expected a condition{after}")
            self.fail(f"expected a field, got {_show(token)}")
        self.advance()
        if len(token.segments) > 1:
            return self.namespaced(token)
        word = token.text.lower()
        if self.peek.kind == "(":
            return self.aggregate(token)
        if word in NAMESPACE_ALIASES:
            self.fail(f"expected '.' and a key after {token.text!r}", self.peek)
        return self.attribute(token, token.text)

    def aggregate(self, token: Token) -> Metric:
        func = token.text.lower()
        if func not in AGGREGATES:
            close = difflib.get_close_matches(func, AGGREGATES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self.fail(
                f"unknown function {token.text!r} ({hint}functions: {', '.join(AGGREGATES)})",
                token,
            )
        self.advance()  # (
        arg = self.peek
        field = self.field() if arg.kind == "name" and len(arg.segments) > 1 else None
        if not isinstance(field, Metric):
            self.fail(f"{func}() takes a metric, e.g. {func}(metrics.loss)", arg)
        if self.peek.kind != ")":
            self.fail(f"expected ')' after {func}({arg.text}{_got(self.peek)}")
        self.advance()
        return Metric(field.key, func)

    def namespaced(self, token: Token) -> Field:
        prefix, *rest = token.segments
        namespace = NAMESPACE_ALIASES.get(prefix.lower())
        if namespace is None:
            close = difflib.get_close_matches(prefix.lower(), [*NAMESPACES, "attributes"], n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            known = ", ".join(sorted(self.namespaces))
            self.fail(f"unknown namespace {prefix!r} ({hint}namespaces: {known})", token)
        key = ".".join(rest)
        if namespace == "attributes":
            if len(rest) > 1 or not _is_identifier(key):
                self.fail(f"attribute names are plain identifiers, not {key!r}", token)
            return self.attribute(token, key)
        if namespace not in self.namespaces:
            known = ", ".join(sorted(self.namespaces)) or "none"
            self.fail(f"'{namespace}.' fields cannot be used here (namespaces: {known})", token)
        if namespace == "metrics":
            return Metric(key)
        if namespace == "params":
            return Param(key)
        if namespace == "tags":
            return Tag(key)
        return Meta(cast(MetaNamespace, namespace), key)

    def attribute(self, token: Token, name: str) -> Attribute:
        if self.attributes is None:
            return Attribute(name)
        canonical = self.attributes.get(name.lower())
        if canonical is None:
            names = sorted(self.attributes.values())
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = f"attributes: {', '.join(names)}" if names else "no attributes here"
            self.fail(f"unknown attribute {name!r}{hint}; {known}", token)
        return Attribute(canonical)


def _attribute_map(attributes: Collection[str]) -> dict[str, str]:
    if isinstance(attributes, str):
        raise TypeError("attributes must be a collection of names, not a string")
    return {name.lower(): name for name in attributes}


def _is_identifier(text: str) -> bool:
    return text.isascii() and text.isidentifier()


def _show(token: Token) -> str:
    if token.kind == "eof":
        return "the end of the query"
    text = token.text if len(token.text) <= 40 else token.text[:37] + "..."
    return repr(text)


def _got(token: Token) -> str:
    return f", got {_show(token)}"
