"""String literals of the ``.gen`` language: quoting, escapes and ``{expr}`` interpolation.

* ``"..."`` and ``\"\"\"...\"\"\"``: backslash escapes (``\\n``, ``\\t``, ``\\\\``, ``\\"``, ``\\{``, ``\\xNN``,
  ``\\uNNNN``, ``\\UNNNNNNNN``), ``{name}`` interpolation, ``{{`` / ``}}`` for literal braces.
* ``r"..."``: raw — the text is taken as written (no escapes, no interpolation), which is what
  regular expressions want.
"""

from __future__ import annotations

import re

from genweave.dsl import ast
from genweave.dsl.errors import GenSyntaxError, Span

_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'",
                   "{": "{", "}": "}", "\n": ""}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_INTERP_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z_0-9]*)\s*")


def parse_string_token(text: str, span: Span, source: str) -> ast.String:
    """Turn a STRING token (quotes included) into an :class:`ast.String`."""
    raw = text[0] in "rR"
    body_start = 1 if raw else 0
    triple = text[body_start:body_start + 3] == '"""'
    quote = 3 if triple else 1
    body = text[body_start + quote:len(text) - quote]
    # Where the body starts in the source, to point errors inside the literal.
    origin = _Cursor(span.line, span.col + body_start + quote, span.file)
    if raw:
        return ast.String((body,) if body else (), raw=True, triple=triple, span=span)
    return ast.String(tuple(_cook(body, origin, source)), raw=False, triple=triple, span=span)


class _Cursor:
    """Maps an offset inside a literal's body back to a source line and column."""

    def __init__(self, line: int, col: int, file: str):
        self.line, self.col, self.file = line, col, file

    def span_at(self, body: str, start: int, end: int) -> Span:
        line, col = self._advance(body, start)
        end_line, end_col = self._advance(body, end)
        return Span(line, col, end_line, end_col, self.file)

    def _advance(self, body: str, offset: int) -> tuple[int, int]:
        before = body[:offset]
        newlines = before.count("\n")
        if newlines == 0:
            return self.line, self.col + offset
        return self.line + newlines, offset - before.rfind("\n")


def _cook(body: str, origin: _Cursor, source: str) -> list[str | ast.Interpolation]:
    parts: list[str | ast.Interpolation] = []
    text: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            decoded, i = _escape(body, i, origin, source)
            text.append(decoded)
        elif ch == "{" and body.startswith("{{", i):
            text.append("{")
            i += 2
        elif ch == "}" and body.startswith("}}", i):
            text.append("}")
            i += 2
        elif ch == "{":
            if text:
                parts.append("".join(text))
                text = []
            interp, i = _interpolation(body, i, origin, source)
            parts.append(interp)
        elif ch == "}":
            raise GenSyntaxError("single '}' in a string literal", span=origin.span_at(body, i, i + 1),
                                 source=source, hint="write '}}' for a literal brace")
        else:
            text.append(ch)
            i += 1
    if text:
        parts.append("".join(text))
    return parts


def _escape(body: str, i: int, origin: _Cursor, source: str) -> tuple[str, int]:
    kind = body[i + 1] if i + 1 < len(body) else ""
    if kind in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[kind], i + 2
    if kind in _HEX_ESCAPES:
        width = _HEX_ESCAPES[kind]
        digits = body[i + 2:i + 2 + width]
        if len(digits) == width and all(c in "0123456789abcdefABCDEF" for c in digits):
            code = int(digits, 16)
            if code <= 0x10FFFF:
                return chr(code), i + 2 + width
    end = min(len(body), i + 2 + (_HEX_ESCAPES.get(kind, 0)))
    raise GenSyntaxError(f"invalid escape sequence '{body[i:end]}' in a string literal",
                         span=origin.span_at(body, i, end), source=source,
                         hint=r'use r"..." for text with backslashes, or write \\ for one backslash')


def _interpolation(body: str, i: int, origin: _Cursor, source: str) -> tuple[ast.Interpolation, int]:
    close = body.find("}", i)
    if close < 0:
        raise GenSyntaxError("unclosed '{' in a string literal", span=origin.span_at(body, i, i + 1),
                             source=source, hint="write '{{' for a literal brace")
    match = _INTERP_NAME.fullmatch(body, i + 1, close)
    if match is None:
        raise GenSyntaxError(f"expected a name inside '{{...}}', found {body[i + 1:close]!r}",
                             span=origin.span_at(body, i, close + 1), source=source,
                             hint="interpolate a parameter or hole, e.g. {topic}; write '{{' for a brace")
    name_span = origin.span_at(body, match.start(1), match.end(1))
    expr = ast.Name(match.group(1), span=name_span)
    return ast.Interpolation(expr, span=origin.span_at(body, i, close + 1)), close + 1


def quote(string: ast.String) -> str:
    """Source text of a string literal (the formatter's inverse of :func:`parse_string_token`)."""
    if string.raw:
        body = string.constant
        delim = '"""' if string.triple or '"' in body or "\n" in body else '"'
        return f"r{delim}{body}{delim}"
    pieces = []
    for part in string.parts:
        if isinstance(part, ast.Interpolation):
            pieces.append("{" + part.expr.id + "}")
        else:
            pieces.append(_escape_text(part, string.triple))
    delim = '"""' if string.triple else '"'
    return f"{delim}{''.join(pieces)}{delim}"


def _escape_text(text: str, triple: bool) -> str:
    out = text.replace("\\", "\\\\").replace("{", "{{").replace("}", "}}")
    if triple:
        return out.replace('"""', '\\"""')
    return out.replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
