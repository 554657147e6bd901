"""Source text -> :class:`genweave.dsl.ast.Module`.

Lark parses with an LALR(1) table and an indentation post-lexer; one transformer
(:mod:`genweave.dsl.transform`) turns the parse tree into frozen AST nodes with spans. Every
failure becomes a :class:`GenSyntaxError` with ``file:line:col``, the source line and a caret.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.indenter import Indenter

from genweave.dsl import ast
from genweave.dsl.errors import GenError, GenSyntaxError, Span
from genweave.dsl.transform import ToAst


class _GenIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 4

    def handle_NL(self, token):
        # An inconsistent dedent is the user's syntax error, not lark's DedentError.
        indent_str = token.rsplit("\n", 1)[-1]
        indent = indent_str.count(" ") + indent_str.count("\t") * self.tab_len
        if self.paren_level == 0 and indent < self.indent_level[-1] and indent not in self.indent_level:
            line = token.end_line
            raise GenSyntaxError("this line's indentation matches no enclosing block",
                                 span=Span(line, 1, line, indent + 1))
        yield from super().handle_NL(token)


@cache
def _lark() -> Lark:
    grammar = resources.files("genweave.dsl").joinpath("grammar.lark").read_text()
    return Lark(grammar, parser="lalr", postlex=_GenIndenter(), propagate_positions=_positioned,
                maybe_placeholders=True, cache=False, start=["start", "interp"])


def _positioned(node) -> bool:
    # Spans end at a node's last real token, not at the newline (and comment) that ends its line.
    return not (isinstance(node, Token) and node.type in ("_NL", "_INDENT", "_DEDENT"))


# Blocks and sub-expressions nest at most this deep (the stages after parsing recurse on nesting).
MAX_DEPTH = 100


def parse(source: str, file: str = "<source>") -> ast.Module:
    """Parse ``.gen`` source into a module AST.

    >>> m = parse('model lm = "smollm2-135m"\\nprogram hi() -> str:\\n    x = gen max 5 tokens\\n    return x\\n')
    >>> [p.name for p in m.programs()]
    ['hi']
    """
    text = source if source.endswith("\n") else source + "\n"
    try:
        tree = _lark().parse(text, start="start")
        _check_depth(tree)
        decls = ToAst(source, file, _interpolation_parser(source, file)).transform(tree)
    except VisitError as err:  # errors raised inside the transformer arrive wrapped
        raise _located(err.orig_exc, source, file) from None
    except GenError as err:
        raise _located(err, source, file) from None
    except UnexpectedInput as err:
        raise _syntax_error(err, source, file) from None
    return ast.Module(decls, file=file, source=source)


def parse_expression(text: str, origin: Span | None = None, *, source: str | None = None,
                     file: str = "<source>") -> ast.Expr:
    """Parse one expression (what ``{...}`` interpolations and the Python builders accept).

    ``origin`` is where ``text`` starts in ``source`` (spans and errors are shifted to it).

    >>> parse_expression("len(x) + 1")
    Binary(op='+', left=Call(func=Name(id='len'), args=(Name(id='x'),), kwargs=()), right=Number(value=1))
    """
    source = text if source is None else source
    line, col = (origin.line, origin.col) if origin is not None else (1, 1)
    try:
        tree = _lark().parse(text, start="interp")
        _check_depth(tree)
        return ToAst(source, file, _interpolation_parser(source, file), (line, col)).transform(tree)
    except VisitError as err:
        raise _located(err.orig_exc, source, file) from None
    except GenError as err:
        raise _located(err, source, file) from None
    except UnexpectedInput as err:
        shifted = _syntax_error(err, text, file)
        at = shifted.span
        if at.line == 1:
            at = Span(line, col + at.col - 1, line, col + at.end_col - 1, file)
        else:
            at = Span(line + at.line - 1, at.col, line + at.line - 1, at.end_col, file)
        message = shifted.message.replace("end of file", "end of the expression")
        raise GenSyntaxError(f"invalid expression inside '{{...}}': {message}", span=at, source=source,
                             hint=shifted.hint) from None


def _interpolation_parser(source: str, file: str):
    def parse_interpolation(text: str, origin: Span) -> ast.Expr:
        return parse_expression(text, origin, source=source, file=file)
    return parse_interpolation


def _check_depth(tree: Tree) -> None:
    """A :class:`GenSyntaxError` at the first node nested deeper than :data:`MAX_DEPTH`."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            meta = node.meta
            span = Span(meta.line, meta.column, meta.line, meta.column + 1) if not meta.empty else None
            raise GenSyntaxError(f"the program nests too deeply (more than {MAX_DEPTH} levels of blocks "
                                 "and sub-expressions)", span=span,
                                 hint="split the expression with `let`, or the block into programs")
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def parse_bytes(data: bytes, file: str = "<source>") -> ast.Module:
    """Decode UTF-8 ``data`` and parse it; undecodable input raises :class:`GenSyntaxError`."""
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise GenSyntaxError(f"cannot read {file!r}: not UTF-8 text ({err.reason} at byte "
                             f"{err.start})") from None
    return parse(source, file=file)


def parse_file(path: str | Path) -> ast.Module:
    """Read and parse a ``.gen`` file; unreadable files raise :class:`GenSyntaxError`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GenSyntaxError(f"cannot read {str(path)!r}: no such file") from None
    except IsADirectoryError:
        raise GenSyntaxError(f"cannot read {str(path)!r}: it is a directory") from None
    except OSError as err:
        raise GenSyntaxError(f"cannot read {str(path)!r}: {err.strerror}") from None
    return parse_bytes(data, file=str(path))


def _located(err: BaseException, source: str, file: str) -> GenError:
    if not isinstance(err, GenError):
        raise err
    if err.span is not None:
        err.span = Span(err.span.line, err.span.col, err.span.end_line, err.span.end_col, file)
    err.source = source
    return err


# Friendly names for the terminals a user can be told were expected.
_TERMINAL_NAMES = {
    "_NL": "end of line", "_INDENT": "an indented block", "_DEDENT": "end of block",
    "NAME": "a name", "STRING": "a string literal", "INT": "an integer", "NUMBER": "a number",
    "ROLE": "a role (system, user, assistant)", "$END": "end of file",
}
# Tokens that continue an expression; listed together as "an operator" after an expression.
_BINARY = frozenset({"or", "and", "in", "+", "-", "*", "/", "//", "%", "==", "!=", "<", "<=", ">", ">="})
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in"})
_POSTFIX = frozenset({".", "[", "("})


@cache
def _terminal_texts() -> dict[str, str]:
    """Terminal name -> the literal text it matches (for keywords and punctuation)."""
    return {t.name: t.pattern.value for t in _lark().terminals if t.pattern.type == "str"}


def _describe_expected(expected: set[str]) -> str:
    texts = _terminal_texts()
    names: set[str] = set()
    after_expression = any(texts.get(t) in _BINARY for t in expected)
    if after_expression:
        names.add("an operator")
    for term in expected:
        if term in _TERMINAL_NAMES:
            names.add(_TERMINAL_NAMES[term])
        elif term in texts and not (after_expression and texts[term] in _BINARY | _POSTFIX):
            names.add(f"'{texts[term]}'")
    if not names:
        return ""
    ordered = sorted(names, key=lambda n: (n.startswith("'"), n))
    if len(ordered) > 6:
        ordered = ordered[:6] + ["..."]
    return "; expected " + ", ".join(ordered)


def _token_span_of(token: Token, file: str) -> Span:
    return Span(token.line, token.column, token.end_line, token.end_column, file)


def _syntax_error(err: UnexpectedInput, source: str, file: str) -> GenSyntaxError:
    line, col = max(err.line, 1), max(err.column, 1)
    if isinstance(err, UnexpectedCharacters):
        char = source.splitlines()[line - 1][col - 1:col] if line <= len(source.splitlines()) else ""
        message = f"unexpected character {char!r}"
        if char == '"':
            message = "unterminated string literal"
    elif isinstance(err, UnexpectedToken):
        token = err.token
        if token.type == "$END":
            message = "unexpected end of file"
        elif token.type == "_NL":
            message = "unexpected end of line"
        elif token.type in ("_INDENT", "_DEDENT"):
            message = "unexpected indentation"
        else:
            message = f"unexpected {token.value!r}"
        if str(token.value) in _COMPARISONS and any(_terminal_texts().get(t) in _BINARY for t in err.expected):
            return GenSyntaxError("comparisons do not chain", span=_token_span_of(token, file), source=source,
                                  hint="write `a < b and b < c`, or add parentheses")
        message += _describe_expected(set(err.expected))
    elif isinstance(err, UnexpectedEOF):
        message = "unexpected end of file" + _describe_expected(set(err.expected))
    else:
        message = str(err)
    width = 1
    if isinstance(err, UnexpectedToken) and err.token.type in ("_INDENT", "_DEDENT"):
        # Indentation tokens borrow the position of the preceding newline: point at the line itself.
        line, col = err.token.end_line, len(str(err.token.value)) + 1
    elif isinstance(err, UnexpectedToken) and err.token.type not in ("$END", "_NL"):
        width = max(1, len(str(err.token.value).split("\n")[0]))
    return GenSyntaxError(message, span=Span(line, col, line, col + width, file), source=source)
