"""String literals of the ``.gen`` language: quoting, escapes and ``{expr}`` interpolation.

* ``"..."`` and ``\"\"\"...\"\"\"``: backslash escapes (``\\n``, ``\\t``, ``\\\\``, ``\\"``, ``\\{``, ``\\xNN``,
  ``\\uNNNN``, ``\\UNNNNNNNN``), ``{expr}`` interpolation, ``{{`` / ``}}`` for literal braces.
* ``r"..."``: raw — the text is taken as written (no escapes, no interpolation), which is what
  regular expressions want.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from genweave.dsl import ast
from genweave.dsl.errors import GenSyntaxError, Span

_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'",
                   "{": "{", "}": "}", "\n": ""}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_INTERP_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z_0-9]*)\s*")
_EXPR_WORDS = frozenset({"true", "false", "not", "and", "or", "in"})  # not names inside `{...}`

# Parses the text of an interpolation into an expression; ``origin`` is where the text starts.
ExprParser = Callable[[str, Span], ast.Expr]


def parse_string_token(text: str, span: Span, source: str, parse_expr: ExprParser | None = None) -> ast.String:
    """Turn a STRING token (quotes included) into an :class:`ast.String`.

    ``parse_expr`` parses interpolations other than a plain name (without it, only names are
    accepted inside ``{...}``).
    """
    raw, triple, body, origin = _split(text, span)
    if raw:
        return ast.String((body,) if body else (), raw=True, triple=triple, span=span)
    return ast.String(tuple(_cook(body, origin, source, parse_expr)), raw=False, triple=triple, span=span)


def verbatim_string_token(text: str, span: Span) -> ast.String:
    """A STRING token whose body is taken as written, whatever its prefix: the text of an embedded
    regex, Lark grammar or JSON Schema (those languages have their own escapes, and JSON's braces
    are not interpolations). ``raw`` still records an ``r`` prefix, for the formatter."""
    raw, triple, body, _ = _split(text, span)
    return ast.String((body,) if body else (), raw=raw, triple=triple, span=span)


def _split(text: str, span: Span) -> tuple[bool, bool, str, _Cursor]:
    raw = text[0] in "rR"
    body_start = 1 if raw else 0
    triple = text[body_start:body_start + 3] == '"""'
    quote_len = 3 if triple else 1
    body = text[body_start + quote_len:len(text) - quote_len]
    # Where the body starts in the source, to point errors inside the literal.
    return raw, triple, body, _Cursor(span.line, span.col + body_start + quote_len, span.file)


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


def _cook(body: str, origin: _Cursor, source: str, parse_expr: ExprParser | None) -> list[str | ast.Interpolation]:
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
            interp, i = _interpolation(body, i, origin, source, parse_expr)
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


def _interpolation(body: str, i: int, origin: _Cursor, source: str,
                   parse_expr: ExprParser | None) -> tuple[ast.Interpolation, int]:
    close = body.find("}", i)
    if close < 0:
        raise GenSyntaxError("unclosed '{' in a string literal", span=origin.span_at(body, i, i + 1),
                             source=source, hint="write '{{' for a literal brace")
    span = origin.span_at(body, i, close + 1)
    match = _INTERP_NAME.fullmatch(body, i + 1, close)
    if match is not None and (match.group(1) not in _EXPR_WORDS or parse_expr is None):
        expr: ast.Expr = ast.Name(match.group(1), span=origin.span_at(body, match.start(1), match.end(1)))
    elif parse_expr is None or not body[i + 1:close].strip() or "\n" in body[i + 1:close]:
        raise GenSyntaxError(f"expected an expression inside '{{...}}', found {body[i + 1:close]!r}",
                             span=span, source=source,
                             hint="interpolate a value, e.g. {topic} or {len(items)}; write '{{' for a brace")
    else:
        expr = parse_expr(body[i + 1:close], origin.span_at(body, i + 1, close))
    return ast.Interpolation(expr, span=span), close + 1


def body_offsets(text: str, *, verbatim: bool = False) -> list[int]:
    r"""For the STRING token ``text``: the offset in ``text`` of each character of its value, plus
    one past the end (so errors inside embedded regexes, grammars and JSON map to the source).

    >>> body_offsets('"a\\nb"')
    [1, 2, 4, 5]
    """
    raw, triple, body, _ = _split(text, Span(1, 1, 1, 1))
    start = (1 if raw else 0) + (3 if triple else 1)
    if raw or verbatim:
        return [start + k for k in range(len(body) + 1)]
    offsets: list[int] = []
    i = 0
    while i < len(body):
        if body[i] == "\\":
            kind = body[i + 1] if i + 1 < len(body) else ""
            width = 2 + _HEX_ESCAPES.get(kind, 0)
            if kind != "\n":
                offsets.append(start + i)
            i += width
        elif body.startswith("{{", i) or body.startswith("}}", i):
            offsets.append(start + i)
            i += 2
        else:
            offsets.append(start + i)
            i += 1
    return offsets + [start + len(body)]


def span_in_string(string: ast.String, source: str, start: int, end: int, *, verbatim: bool = False) -> Span:
    """The source span of characters ``[start, end)`` of a constant string literal's value
    (``verbatim``: a string whose value is its body as written)."""
    token = _token_text(string.span, source)
    if token is None:
        return string.span
    offsets = body_offsets(token, verbatim=verbatim)
    start = min(max(start, 0), len(offsets) - 1)
    end = min(max(end, start + 1), len(offsets) - 1) if len(offsets) > 1 else start
    cursor = _Cursor(string.span.line, string.span.col, string.span.file)
    return cursor.span_at(token, offsets[start], max(offsets[end - 1] + 1, offsets[start] + 1)
                          if end > start else offsets[start] + 1)


def _token_text(span: Span, source: str) -> str | None:
    lines = source.splitlines(keepends=True)
    if not (1 <= span.line <= len(lines) and 1 <= span.end_line <= len(lines)):
        return None
    first = sum(len(line) for line in lines[:span.line - 1]) + span.col - 1
    last = sum(len(line) for line in lines[:span.end_line - 1]) + span.end_col - 1
    text = source[first:last]
    return text if len(text) >= 2 and text.endswith('"') else None


def quote(string: ast.String, format_expr: Callable[[ast.Expr], str] | None = None, *,
          verbatim: bool = False) -> str:
    """Source text of a string literal (the formatter's inverse of :func:`parse_string_token`, or
    of :func:`verbatim_string_token` when ``verbatim``)."""
    if verbatim:
        delim = '"""' if string.triple else '"'
        return f"{'r' if string.raw else ''}{delim}{string.constant}{delim}"
    if string.raw:
        delim = '"""' if string.triple else '"'
        return f"r{delim}{string.constant}{delim}"
    pieces = []
    for part in string.parts:
        if isinstance(part, ast.Interpolation):
            text = format_expr(part.expr) if format_expr else part.expr.id
            pieces.append("{" + text + "}")
        else:
            pieces.append(_escape_text(part, string.triple))
    delim = '"""' if string.triple else '"'
    return f"{delim}{''.join(pieces)}{delim}"


def make_string(text: str, *, verbatim: bool = False) -> ast.String:
    """A string node for ``text`` that :func:`quote` can print and the parser reads back the same
    (what the Python builders create). ``verbatim``: the text of an embedded regex, grammar or
    schema, quoted raw (triple-quoted when it holds a newline or a quote)."""
    if not verbatim:
        return ast.String((text,) if text else (), triple="\n" in text)
    single = "\n" not in text and '"' not in text and not text.endswith("\\")
    if single or ('"""' not in text and not text.endswith(('"', "\\"))):
        return ast.String((text,) if text else (), raw=True, triple=not single)
    raise GenSyntaxError(f"cannot quote {text[:40]!r} as a raw string: it contains a triple quote "
                         "or ends with a quote or a backslash")


def _escape_text(text: str, triple: bool) -> str:
    out = text.replace("\\", "\\\\").replace("{", "{{").replace("}", "}}")
    if triple:
        out = out.replace('"""', '\\"""')
        return out[:-1] + '\\"' if out.endswith('"') else out
    return out.replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
