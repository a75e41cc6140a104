"""A small OData ``$filter`` evaluator for the groups listing.

Supports ``eq``/``ne`` comparisons, ``contains``/``startswith``/``endswith``, ``tolower``/``toupper``, ``and``/``or``/
``not``, parentheses, string literals with doubled-quote escaping (``'O''Brien'``), and ``true``/``false``/``null``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<punct>[(),])|(?P<word>[A-Za-z_][A-Za-z0-9_.]*)|(?P<num>-?\d+(?:\.\d+)?))"
)
_FUNCS_1: dict[str, Callable[[str], str]] = {"tolower": str.lower, "toupper": str.upper, "trim": str.strip}
_FUNCS_2: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda a, b: b in a,
    "startswith": str.startswith,
    "endswith": str.endswith,
}

Predicate = Callable[[Mapping[str, Any]], bool]
Value = Callable[[Mapping[str, Any]], Any]


class FilterError(ValueError):
    """The ``$filter`` expression is not understood."""


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            msg = f"Invalid $filter near {text[pos:pos + 20]!r}."
            raise FilterError(msg)
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (expected is not None and token[1].lower() != expected):
            found = token[1] if token else "end of expression"
            msg = f"Invalid $filter: expected {expected or 'a term'}, found {found!r}."
            raise FilterError(msg)
        self.pos += 1
        return token

    def at_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "word" and token[1].lower() == word

    def parse(self) -> Predicate:
        predicate = self.expr()
        if self.peek() is not None:
            msg = f"Invalid $filter: unexpected {self.peek()[1]!r}."  # type: ignore[index]
            raise FilterError(msg)
        return predicate

    def expr(self) -> Predicate:
        left = self.conjunction()
        while self.at_word("or"):
            self.take()
            left = _either(left, self.conjunction())
        return left

    def conjunction(self) -> Predicate:
        left = self.term()
        while self.at_word("and"):
            self.take()
            left = _both(left, self.term())
        return left

    def term(self) -> Predicate:
        if self.at_word("not"):
            self.take()
            inner = self.term()
            return lambda row: not inner(row)
        token = self.peek()
        if token == ("punct", "("):
            self.take()
            inner = self.expr()
            self.take(")")
            return inner
        if token is not None and token[0] == "word" and token[1].lower() in _FUNCS_2:
            name = self.take()[1].lower()
            self.take("(")
            left = self.value()
            self.take(",")
            right = self.value()
            self.take(")")
            func = _FUNCS_2[name]
            return lambda row: _as_str(left(row)) is not None and func(_as_str(left(row)) or "",
                                                                        _as_str(right(row)) or "")
        left = self.value()
        op = self.take()[1].lower()
        if op not in ("eq", "ne"):
            msg = f"Invalid $filter: unsupported operator {op!r} (supported: eq, ne, contains, startswith, endswith)."
            raise FilterError(msg)
        right = self.value()
        if op == "eq":
            return lambda row: bool(left(row) == right(row))
        return lambda row: bool(left(row) != right(row))

    def value(self) -> Value:
        kind, text = self.take()
        if kind == "str":
            literal = text[1:-1].replace("''", "'")
            return lambda row: literal
        if kind == "num":
            number = float(text) if "." in text else int(text)
            return lambda row: number
        if kind != "word":
            msg = f"Invalid $filter: unexpected {text!r}."
            raise FilterError(msg)
        lowered = text.lower()
        if lowered in ("true", "false", "null"):
            constant = {"true": True, "false": False, "null": None}[lowered]
            return lambda row: constant
        if lowered in _FUNCS_1:
            self.take("(")
            inner = self.value()
            self.take(")")
            func = _FUNCS_1[lowered]
            return lambda row: None if _as_str(inner(row)) is None else func(_as_str(inner(row)) or "")
        return lambda row: row.get(text)


def _either(a: Predicate, b: Predicate) -> Predicate:
    return lambda row: a(row) or b(row)


def _both(a: Predicate, b: Predicate) -> Predicate:
    return lambda row: a(row) and b(row)


def _as_str(value: Any) -> str | None:
    return None if value is None else str(value)


def compile_filter(text: str) -> Predicate:
    """Compile an OData ``$filter`` into a predicate over a JSON object (``FilterError`` when invalid)."""
    if not text.strip():
        return lambda row: True
    return _Parser(text).parse()
