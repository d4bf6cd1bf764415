r"""The search language shared by the CLI, the API and the UI: text -> typed AST.

>>> from mltrail.query import parse, to_text
>>> tree = parse("metrics.val_acc > 0.9 and (params.optimizer = 'adam' or tags.team = 'cv')")
>>> to_text(tree)
"metrics.val_acc > 0.9 and (params.optimizer = 'adam' or tags.team = 'cv')"
>>> parse("   ") is None  # an empty query matches everything
True

Grammar (EBNF; keywords are case-insensitive, whitespace separates tokens)::

    query      = [ or_expr ] ;                         (* empty -> None *)
    or_expr    = and_expr , { "or" , and_expr } ;
    and_expr   = not_expr , { "and" , not_expr } ;
    not_expr   = { "not" } , primary ;
    primary    = "(" , or_expr , ")" | predicate ;
    predicate  = field , [ compare_op , value
                         | [ "not" ] , "in" , "(" , value , { "," , value } , ")"
                         | [ "not" ] , ( "like" | "ilike" ) , string
                         | "is" , [ "not" ] , "null" ] ;   (* bare field -> Exists *)
    compare_op = "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=" ;
    value      = string | number | "true" | "false" | "null" ;
    field      = aggregate , "(" , metrics , "." , key , ")"
               | namespace , "." , key
               | ( "attributes" | "attribute" | "attr" ) , "." , identifier
               | identifier ;                          (* an attribute: status, ... *)
    aggregate  = "min" | "max" | "count" | "last" ;
    namespace  = metrics | "params" | "param" | "parameters" | "parameter" | "config"
               | "tags" | "tag" | "system" | "git" | "env" | "metadata" ;
    metrics    = "metrics" | "metric" ;
    key        = segment , { "." , segment } ;         (* joined with dots *)
    segment    = bare_char , { bare_char } | "`" , { char - "`" | "\\" | "\`" } , "`" ;
    bare_char  = letter | digit | "_" | "-" | "/" ;
    identifier = ( letter | "_" ) , { letter | digit | "_" } ;   (* ASCII *)
    string     = "'" , { char | escape } , "'" | '"' , { char | escape } , '"' ;
    escape     = "\\" | "\'" | '\"' | "\n" | "\t" | "\r" | "\%" | "\_" ;
    number     = [ "-" ] , digit , { digit } , [ "." , digit , { digit } ]
               , [ ( "e" | "E" ) , [ "+" | "-" ] , digit , { digit } ] ;

Precedence: ``not`` > ``and`` > ``or``. ``metrics.x`` is the last value, the same as
``last(metrics.x)``. ``config.x`` is ``params.x``. ``\%`` and ``\_`` stay in the
string (with their backslash) so a LIKE pattern can match a literal ``%`` or ``_``.
Numbers are 64-bit integers or finite floats. Comparing with ``null`` needs ``is
[not] null``; a bare field (``tags.archived``) means "exists / is truthy".

Limits: 10,000 characters, 100 levels of nesting (parentheses and ``not``). Every
failure is a :class:`~mltrail.errors.QuerySyntaxError` with the 0-based position.
"""

from __future__ import annotations

from mltrail.query.ast import (
    AGGREGATES,
    META_NAMESPACES,
    Aggregate,
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
    Value,
)
from mltrail.query.lexer import MAX_QUERY_LENGTH
from mltrail.query.parser import MAX_DEPTH, NAMESPACES, parse, parse_order_by
from mltrail.query.text import to_text

__all__ = [
    "AGGREGATES",
    "MAX_DEPTH",
    "MAX_QUERY_LENGTH",
    "META_NAMESPACES",
    "NAMESPACES",
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
    "parse",
    "parse_order_by",
    "to_text",
]
