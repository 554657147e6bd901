"""Source text -> :class:`genweave.dsl.ast.Module`.

Lark parses with an LALR(1) table and an indentation post-lexer; one :class:`Transformer` turns the
parse tree into frozen AST nodes with spans. Every failure becomes a :class:`GenSyntaxError` with
``file:line:col``, the source line and a caret.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.indenter import Indenter

from genweave.dsl import ast
from genweave.dsl.errors import GenError, GenSyntaxError, Span
from genweave.dsl.strings import parse_string_token


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
    return Lark(grammar, parser="lalr", postlex=_GenIndenter(), propagate_positions=True,
                maybe_placeholders=True, cache=False)


def parse(source: str, file: str = "<source>") -> ast.Module:
    """Parse ``.gen`` source into a module AST.

    >>> m = parse('model lm = "smollm2-135m"\\nprogram hi() -> str:\\n    x = gen max 5 tokens\\n    return x\\n')
    >>> [p.name for p in m.programs()]
    ['hi']
    """
    text = source if source.endswith("\n") else source + "\n"
    try:
        tree = _lark().parse(text)
        module = _ToAst(source, file).transform(tree)
    except VisitError as err:  # errors raised inside the transformer arrive wrapped
        raise _located(err.orig_exc, source, file) from None
    except GenError as err:
        raise _located(err, source, file) from None
    except UnexpectedInput as err:
        raise _syntax_error(err, source, file) from None
    return ast.Module(module, file=file, source=source)


def parse_file(path: str | Path) -> ast.Module:
    """Read and parse a ``.gen`` file; unreadable files raise :class:`GenSyntaxError`."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GenSyntaxError(f"cannot read {str(path)!r}: no such file") from None
    except IsADirectoryError:
        raise GenSyntaxError(f"cannot read {str(path)!r}: it is a directory") from None
    except UnicodeDecodeError as err:
        raise GenSyntaxError(f"cannot read {str(path)!r}: not UTF-8 text ({err.reason} at byte "
                             f"{err.start})") from None
    except OSError as err:
        raise GenSyntaxError(f"cannot read {str(path)!r}: {err.strerror}") from None
    return parse(source, file=str(path))


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
    "NAME": "a name", "STRING": "a string literal", "INT": "an integer", "SIGNED_NUMBER": "a number",
    "ROLE": "a role (system, user, assistant)", "COLON": "':'", "EQUAL": "'='", "LPAR": "'('",
    "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "VBAR": "'|'", "AMPERSAND": "'&'",
    "__ANON_0": "'->'", "$END": "end of file",
}


def _describe_expected(expected: set[str]) -> str:
    names = []
    for term in sorted(expected):
        if term in _TERMINAL_NAMES:
            names.append(_TERMINAL_NAMES[term])
        elif term.isupper():
            names.append(f"'{term.lower()}'")
    names = sorted(set(names))
    if not names:
        return ""
    if len(names) > 8:
        names = names[:8] + ["..."]
    return "; expected " + ", ".join(names)


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


def _token_span(token: Token) -> Span:
    return Span(token.line, token.column, token.end_line, token.end_column)


def _meta_span(meta) -> Span:
    if getattr(meta, "empty", True):
        return ast.NO_SPAN
    return Span(meta.line, meta.column, meta.end_line, meta.end_column)


@v_args(meta=True)
class _ToAst(Transformer):
    """Parse tree -> AST. Method names follow the grammar's rule and alias names."""

    def __init__(self, source: str, file: str):
        super().__init__()
        self.source = source
        self.file = file

    def _string(self, token: Token) -> ast.String:
        return parse_string_token(str(token), _token_span(token), self.source)

    # declarations
    def start(self, meta, decls):
        return tuple(decls)

    def model_decl(self, meta, items):
        name, spec, *flags = items
        flags = {str(f.children[0]) for f in flags}
        return ast.ModelDecl(str(name), self._string(spec), chat="chat" in flags, bytes="bytes" in flags,
                             span=_meta_span(meta))

    def regex_decl(self, meta, items):
        name, pattern = items
        return ast.RegexDecl(str(name), self._string(pattern), span=_meta_span(meta))

    def sampler_decl(self, meta, items):
        name, chain = items
        return ast.SamplerDecl(str(name), chain, span=_meta_span(meta))

    def program_decl(self, meta, items):
        name, *rest = items
        params = tuple(p for p in rest if isinstance(p, ast.Param))
        returns = next((r for r in rest if isinstance(r, ast.TypeRef)), None)
        body = [r for r in rest if isinstance(r, tuple)]
        short = any(getattr(r, "short", False) for r in rest)
        target = body[0] if body else ()
        infer = body[1] if len(body) > 1 else ()
        return ast.ProgramDecl(str(name), params, returns, tuple(target), tuple(infer), short_form=short,
                               span=_meta_span(meta))

    def param(self, meta, items):
        name, type_ = items
        return ast.Param(str(name), type_, span=_meta_span(meta))

    def type(self, meta, items):
        name, arg = items
        return ast.TypeRef(str(name), (arg,) if arg is not None else (), span=_meta_span(meta))

    def short_body(self, meta, stmts):
        return _ShortBody(stmts)

    def target_section(self, meta, stmts):
        return tuple(stmts)

    def infer_section(self, meta, stmts):
        return tuple(stmts)

    # target statements
    def text_stmt(self, meta, items):
        return ast.TextStmt(self._string(items[0]), span=_meta_span(meta))

    def role_inline(self, meta, items):
        role, text = items
        body = (ast.TextStmt(self._string(text), span=_token_span(text)),)
        return ast.RoleBlock(str(role), body, inline=True, span=_meta_span(meta))

    def role_block(self, meta, items):
        role, *body = items
        return ast.RoleBlock(str(role), tuple(body), span=_meta_span(meta))

    def gen_stmt(self, meta, items):
        target, constraint, *options = items
        stop = next((o[1] for o in options if o[0] == "stop"), None)
        max_tokens = next((o[1] for o in options if o[0] == "max"), None)
        for kind in ("stop", "max"):
            repeated = [o for o in options if o[0] == kind]
            if len(repeated) > 1:
                raise GenSyntaxError(f"'{kind}' given twice for hole '{target}'", span=repeated[1][2])
        return ast.GenStmt(str(target), constraint, stop, max_tokens, span=_meta_span(meta))

    def stop_option(self, meta, items):
        return ("stop", self._string(items[0]), _meta_span(meta))

    def max_option(self, meta, items):
        return ("max", int(items[0]), _meta_span(meta))

    def return_stmt(self, meta, items):
        return ast.ReturnStmt(items[0], span=_meta_span(meta))

    # constraints
    def c_union(self, meta, items):
        return ast.BinaryC("|", items[0], items[1], span=_meta_span(meta))

    def c_inter(self, meta, items):
        return ast.BinaryC("&", items[0], items[1], span=_meta_span(meta))

    def c_regex(self, meta, items):
        return ast.RegexC(self._string(items[0]), span=_meta_span(meta))

    def c_choice(self, meta, items):
        return ast.ChoiceC(tuple(self._string(t) for t in items if t is not None), span=_meta_span(meta))

    def c_literal(self, meta, items):
        return ast.LiteralC(self._string(items[0]), span=_meta_span(meta))

    def c_name(self, meta, items):
        return ast.NamedC(str(items[0]), span=_meta_span(meta))

    # expressions
    def e_name(self, meta, items):
        return ast.Name(str(items[0]), span=_meta_span(meta))

    def e_string(self, meta, items):
        return self._string(items[0])

    def e_number(self, meta, items):
        return items[0]

    def number(self, meta, items):
        text = str(items[0])
        value = float(text) if any(c in text for c in ".eE") else int(text)
        return ast.Number(value, span=_meta_span(meta))

    # inference
    def greedy_stmt(self, meta, items):
        return ast.Greedy(span=_meta_span(meta))

    def sample_stmt(self, meta, items):
        return ast.Sample(items[0], span=_meta_span(meta))

    def draws_stmt(self, meta, items):
        return ast.Draws(int(items[0]), span=_meta_span(meta))

    def seed_stmt(self, meta, items):
        return ast.Seed(int(items[0]), span=_meta_span(meta))

    def chain(self, meta, stages):
        return ast.Chain(tuple(stages), span=_meta_span(meta))

    def stage(self, meta, items):
        name, positional, *rest = items
        options = tuple((str(rest[i]), rest[i + 1]) for i in range(0, len(rest), 2))
        return ast.Stage(str(name), positional, options, span=_meta_span(meta))


class _ShortBody(tuple):
    """The statements of a program without ``target:``/``infer:`` headers."""

    short = True
