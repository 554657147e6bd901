"""Lark parse tree -> frozen AST nodes with spans (one :class:`Transformer`).

Method names follow the grammar's rule and alias names. Spans are shifted by ``origin`` when the
tree comes from the text of a ``{...}`` interpolation rather than from the start of the file.
"""

from __future__ import annotations

from lark import Token, Transformer, v_args

from genweave.dsl import ast
from genweave.dsl.errors import GenSyntaxError, Span
from genweave.dsl.strings import ExprParser, parse_string_token, verbatim_string_token

_BINARY = {"e_or": "or", "e_andop": "and", "e_eq": "==", "e_ne": "!=", "e_lt": "<", "e_le": "<=",
           "e_gt": ">", "e_ge": ">=", "e_in": "in", "e_add": "+", "e_sub": "-", "e_mul": "*",
           "e_div": "/", "e_floordiv": "//", "e_mod": "%"}


class _Options(tuple):
    """``(positional, ((key, value), ...))`` of a word list such as ``particles 8 ess 0.5``."""


class _ShortBody(tuple):
    """The statements of a program without ``target:``/``infer:`` headers."""


class _Section(tuple):
    """The statements of a ``target:`` or ``infer:`` section, with the header's line."""

    line: int = 0


@v_args(meta=True)
class ToAst(Transformer):
    """Parse tree -> AST. ``origin`` (line, col) is where the parsed text starts in the file."""

    def __init__(self, source: str, file: str, parse_expr: ExprParser, origin: tuple[int, int] = (1, 1)):
        super().__init__()
        self.source, self.file, self.parse_expr = source, file, parse_expr
        self.line0, self.col0 = origin

    # --- spans -----------------------------------------------------------------------------------
    def _at(self, line: int, col: int) -> tuple[int, int]:
        if line == 1:
            return self.line0, self.col0 + col - 1
        return self.line0 + line - 1, col

    def span(self, meta) -> Span:
        if getattr(meta, "empty", True):
            return ast.NO_SPAN
        return Span(*self._at(meta.line, meta.column), *self._at(meta.end_line, meta.end_column))

    def token_span(self, token: Token) -> Span:
        return Span(*self._at(token.line, token.column), *self._at(token.end_line, token.end_column))

    def string(self, token: Token) -> ast.String:
        return parse_string_token(str(token), self.token_span(token), self.source, self.parse_expr)

    def verbatim(self, token: Token) -> ast.String:
        return verbatim_string_token(str(token), self.token_span(token))

    # --- declarations ------------------------------------------------------------------------------
    def start(self, meta, decls):
        return tuple(decls)

    def interp(self, meta, items):
        return items[0]

    def dotted(self, meta, names):
        return ".".join(str(n) for n in names)

    def use_decl(self, meta, items):
        path, *names = items
        path = self.string(path) if isinstance(path, Token) else path
        return ast.UseDecl(path, tuple(str(n) for n in names if n is not None), span=self.span(meta))

    def model_decl(self, meta, items):
        name, spec, *flags = items
        spec = self.string(spec) if isinstance(spec, Token) else spec
        flags = [str(f) for f in flags]
        for flag in ("chat", "bytes"):
            if flags.count(flag) > 1:
                raise GenSyntaxError(f"'{flag}' given twice for model '{name}'", span=self.span(meta))
        return ast.ModelDecl(str(name), spec, chat="chat" in flags, bytes="bytes" in flags, span=self.span(meta))

    def model_flag(self, meta, items):
        return str(items[0])

    def ensemble(self, meta, items):
        models = tuple(i for i in items if isinstance(i, str) and not isinstance(i, Token))
        weights = tuple(i for i in items if isinstance(i, ast.Number))
        return ast.Ensemble(models, weights, span=self.span(meta))

    def regex_decl(self, meta, items):
        name, pattern = items
        return ast.RegexDecl(str(name), self.verbatim(pattern), span=self.span(meta))

    def grammar_decl(self, meta, items):
        name, file, text = items
        return ast.GrammarDecl(str(name), self.string(text) if file else self.verbatim(text), file=file is not None, span=self.span(meta))

    def schema_decl(self, meta, items):
        name, file, text = items
        return ast.SchemaDecl(str(name), self.string(text) if file else self.verbatim(text), file=file is not None, span=self.span(meta))

    def sampler_decl(self, meta, items):
        name, chain = items
        return ast.SamplerDecl(str(name), chain, span=self.span(meta))

    def predicate_decl(self, meta, items):
        return self._extern("predicate", meta, items)

    def potential_decl(self, meta, items):
        return self._extern("potential", meta, items)

    def _extern(self, kind, meta, items):
        name, ref, prefix = items
        return ast.ExternDecl(kind, str(name), self.string(ref), prefix=prefix is not None, span=self.span(meta))

    def program_decl(self, meta, items):
        name, *rest = items
        params = tuple(p for p in rest if isinstance(p, ast.Param))
        returns = next((r for r in rest if isinstance(r, ast.TypeRef)), None)
        sections = [r for r in rest if isinstance(r, tuple)]
        target = sections[0] if sections else ()
        infer = sections[1] if len(sections) > 1 else ()
        lines = (getattr(target, "line", 0), getattr(infer, "line", 0))
        return ast.ProgramDecl(str(name), params, returns, tuple(target), tuple(infer),
                               short_form=isinstance(target, _ShortBody), span=self.span(meta),
                               section_lines=lines)

    def param(self, meta, items):
        name, type_ = items
        return ast.Param(str(name), type_, span=self.span(meta))

    def type(self, meta, items):
        name, arg = items
        return ast.TypeRef(name, (arg,) if arg is not None else (), span=self.span(meta))

    def short_body(self, meta, stmts):
        return _ShortBody(stmts)

    def target_section(self, meta, items):
        return self._section(items)

    def infer_section(self, meta, items):
        return self._section(items)

    def _section(self, items):
        header, *stmts = items
        section = _Section(stmts)
        section.line = self.token_span(header).line
        return section

    # --- target statements -------------------------------------------------------------------------
    def text_stmt(self, meta, items):
        return ast.TextStmt(self.string(items[0]), span=self.span(meta))

    def role_inline(self, meta, items):
        role, text = items
        body = (ast.TextStmt(self.string(text), span=self.token_span(text)),)
        return ast.RoleBlock(str(role), body, inline=True, span=self.span(meta))

    def role_block(self, meta, items):
        role, *body = items
        return ast.RoleBlock(str(role), tuple(body), span=self.span(meta))

    def gen_stmt(self, meta, items):
        target, constraint, *options = items
        for kind in ("stop", "max", "keep"):
            repeated = [o for o in options if o[0] == kind]
            if len(repeated) > 1:
                raise GenSyntaxError(f"'{kind}' given twice for hole '{target}'", span=repeated[1][2])
        stop = next((o[1] for o in options if o[0] == "stop"), None)
        max_tokens = next((o[1] for o in options if o[0] == "max"), None)
        keep = any(o[0] == "keep" for o in options)
        return ast.GenStmt(str(target), constraint, stop, max_tokens, keep, span=self.span(meta))

    def stop_option(self, meta, items):
        return ("stop", self.string(items[0]), self.span(meta))

    def keep_option(self, meta, items):
        return ("keep", True, self.span(meta))

    def max_option(self, meta, items):
        return ("max", int(items[0]), self.span(meta))

    def let_stmt(self, meta, items):
        name, value = items
        return ast.LetStmt(str(name), value, span=self.span(meta))

    def if_stmt(self, meta, items):
        condition, *rest = items
        body = tuple(s for s in rest if not isinstance(s, tuple) and s is not None)
        clauses = [c for c in rest if isinstance(c, tuple)]
        orelse: tuple = ()
        else_line = 0
        for clause in reversed(clauses):  # elif a: x else: y -> else: (if a: x else: y)
            if clause[0] == "else":
                orelse, else_line = clause[1], clause[2]
            else:
                _, cond, stmts, span = clause
                orelse = (ast.IfStmt(cond, stmts, orelse, span=span, else_line=else_line),)
                else_line = 0
        return ast.IfStmt(condition, body, orelse, span=self.span(meta), else_line=else_line)

    def elif_clause(self, meta, items):
        condition, *body = items
        return ("elif", condition, tuple(body), self.span(meta))

    def else_clause(self, meta, items):
        return ("else", tuple(items), self.span(meta).line)

    def for_stmt(self, meta, items):
        var, iterable, *body = items
        return ast.ForStmt(str(var), iterable, tuple(body), span=self.span(meta))

    def call_stmt(self, meta, items):
        return ast.CallStmt(items[0], span=self.span(meta))

    def factor_stmt(self, meta, items):
        return ast.FactorStmt(items[0], span=self.span(meta))

    def condition_stmt(self, meta, items):
        return ast.ConditionStmt(items[0], span=self.span(meta))

    def return_stmt(self, meta, items):
        return ast.ReturnStmt(items[0], span=self.span(meta))

    # --- constraints -------------------------------------------------------------------------------
    def c_where(self, meta, items):
        return ast.WhereC(items[0], items[1], span=self.span(meta))

    def c_or(self, meta, items):
        return ast.BinaryC("|", items[0], items[1], span=self.span(meta))

    def c_and(self, meta, items):
        return ast.BinaryC("&", items[0], items[1], span=self.span(meta))

    def c_regex(self, meta, items):
        return ast.RegexC(self.verbatim(items[0]), span=self.span(meta))

    def c_json(self, meta, items):
        return ast.JsonC(self.verbatim(items[0]), span=self.span(meta))

    def c_json_name(self, meta, items):
        span = self.span(meta)
        name_span = Span(span.line, span.end_col - len(items[0]), span.end_line, span.end_col)
        return ast.JsonC(ast.NamedC(items[0], span=name_span), span=span)

    def c_json_module(self, meta, items):
        return ast.NamedC(f"json.{items[0]}", span=self.span(meta))

    def c_lark(self, meta, items):
        return ast.LarkC(self.verbatim(items[0]), span=self.span(meta))

    def c_choice(self, meta, items):
        return ast.ChoiceC(tuple(self.string(t) for t in items if t is not None), span=self.span(meta))

    def c_literal(self, meta, items):
        return ast.LiteralC(self.string(items[0]), span=self.span(meta))

    def c_name(self, meta, items):
        return ast.NamedC(items[0], span=self.span(meta))

    # --- expressions -------------------------------------------------------------------------------
    def __default__(self, data, children, meta):
        op = _BINARY.get(str(data))
        if op is None:
            raise AssertionError(f"no transformer for grammar rule {data!r}")
        return ast.Binary(op, children[0], children[1], span=self.span(meta))

    def e_notop(self, meta, items):
        return ast.Unary("not", items[0], span=self.span(meta))

    def e_neg(self, meta, items):
        return ast.Unary("-", items[0], span=self.span(meta))

    def e_attr(self, meta, items):
        return ast.Attribute(items[0], str(items[1]), span=self.span(meta))

    def e_index(self, meta, items):
        return ast.Index(items[0], items[1], span=self.span(meta))

    def call(self, meta, items):
        func, *args = items
        args = [a for a in args if a is not None]
        positional = tuple(a for a in args if not isinstance(a, tuple))
        keywords = tuple(a[:2] for a in args if isinstance(a, tuple))
        seen: set[str] = set()
        for arg in args:
            if isinstance(arg, tuple):
                if arg[0] in seen:
                    raise GenSyntaxError(f"argument '{arg[0]}' given twice", span=arg[2])
                seen.add(arg[0])
            elif seen:
                raise GenSyntaxError("a positional argument follows a keyword argument", span=arg.span)
        return ast.Call(func, positional, keywords, span=self.span(meta))

    def keyword_arg(self, meta, items):
        return (str(items[0]), items[1], self.span(meta))

    def e_name(self, meta, items):
        return ast.Name(str(items[0]), span=self.span(meta))

    def e_string(self, meta, items):
        return self.string(items[0])

    def e_number(self, meta, items):
        return ast.Number(self._number(items[0], meta), span=self.span(meta))

    def e_true(self, meta, items):
        return ast.Bool(True, span=self.span(meta))

    def e_false(self, meta, items):
        return ast.Bool(False, span=self.span(meta))

    def e_list(self, meta, items):
        return ast.ListExpr(tuple(i for i in items if i is not None), span=self.span(meta))

    # --- inference ---------------------------------------------------------------------------------
    def greedy_stmt(self, meta, items):
        return ast.Greedy(span=self.span(meta))

    def sample_stmt(self, meta, items):
        return ast.Sample(items[0], span=self.span(meta))

    def awrs_stmt(self, meta, items):
        return ast.Awrs(span=self.span(meta))

    def smc_stmt(self, meta, items):
        words = [i for i in items if not isinstance(i, ast.Propose | ast.Twist)]
        body = tuple(i for i in items if isinstance(i, ast.Propose | ast.Twist))
        positional, options = self._options(words, "smc")
        return ast.Smc(positional, options, body, span=self.span(meta))

    def propose_awrs(self, meta, items):
        return ast.Propose("awrs", None, span=self.span(meta))

    def propose_sample(self, meta, items):
        return ast.Propose("sample", items[0], span=self.span(meta))

    def twist_stmt(self, meta, items):
        name, every = items
        return ast.Twist(name, int(every) if every is not None else None, span=self.span(meta))

    def rejection_stmt(self, meta, items):
        return self._method("rejection", meta, items)

    def beam_stmt(self, meta, items):
        return self._method("beam", meta, items)

    def cautious_stmt(self, meta, items):
        return self._method("cautious", meta, items)

    def lookahead_stmt(self, meta, items):
        return self._method("lookahead_tree", meta, items)

    def _method(self, kind, meta, items):
        positional, options = self._options(items, kind)
        return ast.Method(kind, positional, options, span=self.span(meta))

    def best_of_stmt(self, meta, items):
        *words, by = items
        positional, options = self._options(words, "best_of")
        return ast.BestOf(positional, options, by, span=self.span(meta))

    def speculate_stmt(self, meta, items):
        variant, *words = items
        positional, options = self._options(words, f"speculate {variant}")
        return ast.Speculate(str(variant), positional, options, span=self.span(meta))

    def enumerate_stmt(self, meta, items):
        return ast.Enumerate(str(items[0]), span=self.span(meta))

    def heal_stmt(self, meta, items):
        return ast.Heal(span=self.span(meta))

    def boundary_stmt(self, meta, items):
        return ast.Boundary(str(items[0]), span=self.span(meta))

    def draws_stmt(self, meta, items):
        return ast.Draws(int(items[0]), span=self.span(meta))

    def seed_stmt(self, meta, items):
        return ast.Seed(int(items[0]), span=self.span(meta))

    def for_hole_stmt(self, meta, items):
        hole, *body = items
        return ast.ForHole(str(hole), tuple(body), span=self.span(meta))

    def chain(self, meta, stages):
        return ast.Chain(tuple(stages), span=self.span(meta))

    def stage(self, meta, items):
        name, *words = items
        positional, options = self._options(words, name)
        return ast.Stage(name, positional, options, span=self.span(meta))

    def word_name(self, meta, items):
        return ast.Name(str(items[0]), span=self.span(meta))

    def word_string(self, meta, items):
        return self.string(items[0])

    def number(self, meta, items):
        return ast.Number(self._number(items[0], meta), span=self.span(meta))

    def negative_number(self, meta, items):
        return ast.Number(-self._number(items[0], meta), span=self.span(meta))

    def _number(self, token: Token, meta) -> int | float:
        value = _number(str(token))
        if value in (float("inf"), float("-inf")):
            raise GenSyntaxError(f"the number {token} is too large", span=self.span(meta))
        return value

    def _options(self, words, what: str):
        """An odd count of words starts with a positional value; the rest are ``key value`` pairs."""
        positional = None
        if len(words) % 2 == 1:
            positional, words = words[0], words[1:]
        options = []
        for key, value in zip(words[::2], words[1::2]):
            if not isinstance(key, ast.Name):
                raise GenSyntaxError(f"expected a parameter name of '{what}', found {_shown(key)}",
                                     span=key.span, hint="options are written `name value`, e.g. `k 8`")
            if any(k == key.id for k, _ in options):
                raise GenSyntaxError(f"parameter '{key.id}' of '{what}' given twice", span=key.span)
            options.append((key.id, value))
        return positional, tuple(options)


def _number(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


def _shown(value) -> str:
    if isinstance(value, ast.Number):
        return repr(value.value)
    if isinstance(value, ast.String):
        return repr(value.constant)
    return repr(getattr(value, "id", value))
