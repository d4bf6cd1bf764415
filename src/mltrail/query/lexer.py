"""Turn query text into tokens; every failure is a QuerySyntaxError with a position.

A dotted name with its backticked parts is one ``name`` token
(``params.`my key`.x`` -> segments ``("params", "my key", "x")``), so keys may hold
``/`` and ``-`` (``metrics.train/loss``) without the parser seeing operators there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from mltrail.errors import QuerySyntaxError

__all__ = ["KEYWORDS", "MAX_QUERY_LENGTH", "Token", "TokenKind", "tokenize"]

MAX_QUERY_LENGTH = 10_000

KEYWORDS = frozenset({"and", "or", "not", "in", "like", "ilike", "is", "null", "true", "false"})

TokenKind: TypeAlias = Literal["name", "keyword", "string", "number", "op", "(", ")", ",", "eof"]

_OPERATORS = {  # longest first
    "==": "=",
    "!=": "!=",
    "<>": "!=",
    "<=": "<=",
    ">=": ">=",
    "=": "=",
    "<": "<",
    ">": ">",
}
_PUNCTUATION: dict[str, TokenKind] = {"(": "(", ")": ")", ",": ","}
_HINTS = {
    "&": " (use 'and')",
    "|": " (use 'or')",
    "!": " (use 'not' or '!=')",
    ".": " (a number needs a digit before '.', a key needs a namespace: metrics.x)",
    "`": " (backticks quote a key after its namespace: params.`my key`)",
}
_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT = _IDENT_START | frozenset("0123456789")
_KEY = _IDENT | frozenset("-/")  # a bare key segment after a dot
_DIGITS = frozenset("0123456789")
_STRING_ESCAPES = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "%": "\\%",  # kept for LIKE, where backslash escapes a wildcard
    "_": "\\_",
}
_KEY_ESCAPES = {"\\": "\\", "`": "`"}
_INT64 = 2**63


@dataclass(frozen=True, slots=True)
class Token:
    """``value``: lower-case keyword, canonical operator, string contents or number;
    ``segments``: the parts of a dotted name."""

    kind: TokenKind
    pos: int
    text: str
    value: str | int | float = ""
    segments: tuple[str, ...] = ()


def tokenize(query: str) -> list[Token]:
    """Split ``query`` into tokens, ending with an ``eof`` token.

    >>> [t.text for t in tokenize("metrics.train/loss <= 0.5")]
    ['metrics.train/loss', '<=', '0.5', '']
    """
    if len(query) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(
            f"query is too long ({len(query):,} characters; the limit is {MAX_QUERY_LENGTH:,})",
            query,
            MAX_QUERY_LENGTH,
        )
    nul = query.find("\0")
    if nul >= 0:
        raise QuerySyntaxError("NUL character is not allowed", query, nul)
    return _Lexer(query).run()


class _Lexer:
    def __init__(self, query: str) -> None:
        self.query = query
        self.i = 0

    def fail(self, reason: str, position: int) -> QuerySyntaxError:
        return QuerySyntaxError(reason, self.query, position)

    def run(self) -> list[Token]:
        q = self.query
        tokens: list[Token] = []
        while True:
            while self.i < len(q) and q[self.i].isspace():
                self.i += 1
            if self.i >= len(q):
                tokens.append(Token("eof", len(q.rstrip()), ""))
                return tokens
            tokens.append(self.token())

    def token(self) -> Token:
        q, start = self.query, self.i
        ch = q[start]
        if ch in _IDENT_START:
            return self.name()
        if ch in _DIGITS or (ch == "-" and q[start + 1 : start + 2] in _DIGITS):
            return self.number()
        if ch in "'\"":
            return self.string()
        if ch in _PUNCTUATION:
            self.i += 1
            return Token(_PUNCTUATION[ch], start, ch)
        for text, op in _OPERATORS.items():
            if q.startswith(text, start):
                self.i += len(text)
                return Token("op", start, text, op)
        raise self.fail(f"unexpected character {ch!r}{_HINTS.get(ch, '')}", start)

    def name(self) -> Token:
        q, start = self.query, self.i
        while self.i < len(q) and q[self.i] in _IDENT:
            self.i += 1
        segments = [q[start : self.i]]
        while self.i < len(q) and q[self.i] == ".":
            self.i += 1
            if q[self.i : self.i + 1] == "`":
                segments.append(self.backticked())
            elif self.i < len(q) and q[self.i] in _KEY:
                seg_start = self.i
                while self.i < len(q) and q[self.i] in _KEY:
                    self.i += 1
                segments.append(q[seg_start : self.i])
            else:
                found = f", got {q[self.i]!r}" if self.i < len(q) else ""
                raise self.fail(
                    f"expected a key after '.'{found} (quote other characters in "
                    "backticks: params.`my key`)",
                    self.i,
                )
        text = q[start : self.i]
        if len(segments) == 1 and text.lower() in KEYWORDS:
            return Token("keyword", start, text, text.lower())
        return Token("name", start, text, segments=tuple(segments))

    def backticked(self) -> str:
        key = self.quoted("`", _KEY_ESCAPES, "key")
        if not key:
            raise self.fail("empty key in backticks", self.i - 2)
        return key

    def string(self) -> Token:
        start = self.i
        value = self.quoted(self.query[start], _STRING_ESCAPES, "string")
        return Token("string", start, self.query[start : self.i], value)

    def quoted(self, quote: str, escapes: dict[str, str], what: str) -> str:
        q, start = self.query, self.i
        self.i += 1
        parts: list[str] = []
        while True:
            end = self.i
            while end < len(q) and q[end] != quote and q[end] != "\\":
                end += 1
            parts.append(q[self.i : end])
            if end >= len(q) or (q[end] == "\\" and end + 1 >= len(q)):
                raise self.fail(f"unterminated {what} (no closing {quote})", start)
            if q[end] == quote:
                self.i = end + 1
                return "".join(parts)
            escaped = q[end + 1]
            if escaped not in escapes:
                known = " ".join("\\" + e for e in escapes)
                raise self.fail(f"unknown escape '\\{escaped}' in {what} (known: {known})", end)
            parts.append(escapes[escaped])
            self.i = end + 2

    def number(self) -> Token:
        q, start = self.query, self.i
        self.i += 1  # a digit or '-'
        self.digits()
        is_float = False
        if q[self.i : self.i + 1] == "." and q[self.i + 1 : self.i + 2] in _DIGITS:
            is_float = True
            self.i += 1
            self.digits()
        if q[self.i : self.i + 1] in ("e", "E"):
            exp = self.i + 1
            if q[exp : exp + 1] in ("+", "-"):
                exp += 1
            if q[exp : exp + 1] in _DIGITS:
                is_float = True
                self.i = exp
                self.digits()
        text = q[start : self.i]
        if self.i < len(q) and (q[self.i] in _KEY or q[self.i] == "."):
            end = self.i
            while end < len(q) and (q[end] in _KEY or q[end] == "."):
                end += 1
            raise self.fail(f"invalid number {q[start:end]!r}", start)
        value: int | float
        if is_float:
            value = float(text)
            if value in (float("inf"), float("-inf")):
                raise self.fail(f"number out of range: {_short(text)}", start)
        else:
            digits = text.lstrip("-").lstrip("0")
            if len(digits) > 19 or not -_INT64 <= int(text) < _INT64:
                raise self.fail(f"integer out of range (64 bits): {_short(text)}", start)
            value = int(text)
        return Token("number", start, text, value)

    def digits(self) -> None:
        q = self.query
        while self.i < len(q) and q[self.i] in _DIGITS:
            self.i += 1


def _short(text: str) -> str:
    return text if len(text) <= 30 else f"{text[:12]}...{text[-12:]} ({len(text)} chars)"
