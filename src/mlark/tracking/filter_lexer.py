"""The run filter language's tokenizer: text into tokens, each with the position it starts at."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mlark.errors import FilterSyntaxError
from mlark.tracking.filter_ast import EXPECT_KEY, KEY_RE

__all__ = ["Token", "TokenKind", "tokenize"]

TokenKind = Literal["ident", "quoted", "string", "number", "op", "(", ")", ",", ".", "bad", "end"]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str  # source text of the token
    value: object  # decoded: the string, the float, the identifier
    position: int

    def shown(self, kind: str) -> str:
        if self.kind == "end":
            return f"the end of the {kind}"
        text = self.text if len(self.text) <= 24 else self.text[:21] + "..."
        return repr(text)


_IDENT_RE = re.compile(r"[^\W\d]\w*")
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def tokenize(text: str, kind: str = "filter") -> list[Token]:
    """Split ``text`` into tokens, the last one of kind ``end``.

    A character that starts no token becomes a ``bad`` token, so that the
    parser reports it with what it expected there; an unterminated string or
    key and a malformed number raise :class:`FilterSyntaxError` here.
    """
    tokens: list[Token] = []
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        prev = tokens[-1].kind if tokens else None
        if c in "(),":
            tokens.append(Token(c, c, c, i))  # type: ignore[arg-type]
            i += 1
            continue
        if c == "." and (prev in ("ident", "quoted") or not (i + 1 < n and text[i + 1].isdigit())):
            tokens.append(Token(".", ".", ".", i))
            i += 1
            continue
        if prev == "." and c != "`":
            m = KEY_RE.match(text, i)
            if m:
                tokens.append(Token("ident", m.group(), m.group(), i))
                i = m.end()
                continue
        if c in "'\"`":
            value, end = _read_quoted(text, i, kind)
            tokens.append(Token("quoted" if c == "`" else "string", text[i:end], value, i))
            i = end
            continue
        m = _NUMBER_RE.match(text, i)
        if m and (c not in "+-" or prev != "ident"):
            end = m.end()
            if end < n and (text[end].isalnum() or text[end] in "_."):
                raise FilterSyntaxError(text, i, "a number (like 8, -1, 0.5 or 1e-3)",
                                        found=repr(_word_at(text, i)), kind=kind)
            tokens.append(Token("number", m.group(), float(m.group()), i))
            i = end
            continue
        m = _IDENT_RE.match(text, i)
        if m:
            tokens.append(Token("ident", m.group(), m.group(), i))
            i = m.end()
            continue
        two = text[i:i + 2]
        if two in ("<=", ">=", "!="):
            tokens.append(Token("op", two, two, i))
            i += 2
            continue
        if two == "==":
            raise FilterSyntaxError(text, i, "'=' (equality is a single '=')", found="'=='", kind=kind)
        if two == "<>":
            raise FilterSyntaxError(text, i, "'!=' (inequality is written '!=')", found="'<>'", kind=kind)
        if c in "=<>":
            tokens.append(Token("op", c, c, i))
            i += 1
            continue
        tokens.append(Token("bad", c, c, i))
        i += 1
    tokens.append(Token("end", "", None, n))
    return tokens


def _word_at(text: str, i: int) -> str:
    j = i
    while j < len(text) and not text[j].isspace() and text[j] not in "(),=<>!":
        j += 1
    return text[i:j] or text[i:i + 1]


def _read_quoted(text: str, start: int, kind: str) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        if c == quote:
            value = "".join(out)
            if quote == "`" and not value:
                raise FilterSyntaxError(text, start, EXPECT_KEY, found="an empty key ``", kind=kind)
            return value, i + 1
        out.append(c)
        i += 1
    what = "key" if quote == "`" else "string"
    raise FilterSyntaxError(
        text, start, f"a closing {quote} for the {what} that starts here", found=f"the end of the {kind}", kind=kind
    )
