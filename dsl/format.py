"""The canonical formatter: AST -> ``.gen`` source (``genweave fmt``).

Laws (tested): ``parse(format_module(m)) == m`` for every module ``m``, and formatting is
idempotent. The layout is fixed: sections at two spaces, statements four deeper than their
header, one statement a line, single spaces around operators, only the parentheses precedence
needs, one blank line around programs. Comments and single blank lines of the source are kept
(a comment inside a multi-line statement moves above it).

>>> from genweave.dsl.parser import parse
>>> print(format_module(parse('program p( a:str )->str :\\n  return a+"!"   # shout\\n')), end="")
program p(a: str) -> str:
    return a + "!"  # shout
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from genweave.dsl import ast
from genweave.dsl.strings import quote

STEP = "    "
SECTION = "  "
# Binding strength of expression forms beyond the binary operators of ast.BINARY_OPS.
NOT_PREC, NEG_PREC, POSTFIX_PREC, ATOM_PREC = 3, 7, 8, 9
WHERE_PREC, UNION_PREC, INTER_PREC, C_ATOM_PREC = 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class Line:
    """One output line; ``first``/``last`` are the source lines it came from (0: none)."""

    indent: str
    text: str
    first: int = 0
    last: int = 0


def format_module(module: ast.Module, *, comments: bool = True) -> str:
    """The canonical source of ``module``; ``comments`` keeps the comments of ``module.source``."""
    lines: list[Line] = []
    previous: ast.Decl | None = None
    for decl in module.decls:
        if previous is not None and (isinstance(decl, ast.ProgramDecl) or isinstance(previous, ast.ProgramDecl)):
            lines.append(Line("", "", -1, -1))  # a blank line around programs
        lines.extend(_decl(decl))
        previous = decl
    source = module.source if comments else ""
    return _weave(lines, source)


def format_expr(expr: ast.Expr, context: int = 0) -> str:
    """An expression, parenthesized when it binds looser than ``context``."""
    prec, text = _expr(expr)
    return f"({text})" if prec < context else text


def format_constraint(c: ast.Constraint, context: int = 0) -> str:
    prec, text = _constraint(c)
    return f"({text})" if prec < context else text


# --- declarations --------------------------------------------------------------------------------

def _decl(decl: ast.Decl) -> list[Line]:
    line = decl.span.line
    match decl:
        case ast.ProgramDecl():
            return _program(decl)
        case ast.UseDecl(path, names):
            text = "use " + (path if isinstance(path, str) else quote(path))
            text += f" ({', '.join(names)})" if names else ""
        case ast.ModelDecl(name, spec, chat, is_bytes):
            text = f"model {name} = {_model_spec(spec)}" + (" chat" if chat else "") + (" bytes" if is_bytes else "")
        case ast.RegexDecl(name, pattern):
            text = f"regex {name} = {quote(pattern, verbatim=True)}"
        case ast.GrammarDecl(name, source, file):
            text = f"grammar {name} = lark " + (f"file {quote(source)}" if file else quote(source, verbatim=True))
        case ast.SchemaDecl(name, source, file):
            text = f"schema {name} = json " + (f"file {quote(source)}" if file else quote(source, verbatim=True))
        case ast.SamplerDecl(name, chain):
            text = f"sampler {name} = {_chain(chain)}"
        case ast.ExternDecl(kind, name, ref, prefix):
            text = f"{kind} {name} = extern {quote(ref)}" + (" prefix" if prefix else "")
        case _:
            raise TypeError(f"not a declaration: {decl!r}")
    return [Line("", text, line, decl.span.end_line)]


def _model_spec(spec: ast.String | ast.Ensemble) -> str:
    if isinstance(spec, ast.String):
        return quote(spec)
    weights = f", weights [{', '.join(_number(w.value) for w in spec.weights)}]" if spec.weights else ""
    return f"ensemble({', '.join(spec.models)}{weights})"


def _program(program: ast.ProgramDecl) -> list[Line]:
    params = ", ".join(f"{p.name}: {_type(p.type)}" for p in program.params)
    returns = f" -> {_type(program.returns)}" if program.returns else ""
    line = program.span.line
    lines = [Line("", f"program {program.name}({params}){returns}:", line, line)]
    if program.short_form and not program.infer:
        lines += _block(program.target, STEP)
        return lines
    target_line, infer_line = program.section_lines
    lines.append(Line(SECTION, "target:", target_line, target_line))
    lines += _block(program.target, SECTION * 2)
    if program.infer:
        lines.append(Line(SECTION, "infer:", infer_line, infer_line))
        lines += _infer_block(program.infer, SECTION * 2)
    return lines


def _type(t: ast.TypeRef) -> str:
    return t.name + (f"[{', '.join(_type(a) for a in t.args)}]" if t.args else "")


# --- target statements ---------------------------------------------------------------------------

def _block(stmts: tuple[ast.Stmt, ...], indent: str) -> list[Line]:
    return [line for stmt in stmts for line in _stmt(stmt, indent)]


def _stmt(stmt: ast.Stmt, indent: str) -> list[Line]:
    first, last = stmt.span.line, stmt.span.end_line
    match stmt:
        case ast.RoleBlock(role, body, True) if len(body) == 1 and isinstance(body[0], ast.TextStmt):
            return [Line(indent, f"{role}: {_string(body[0].text)}", first, last)]
        case ast.RoleBlock(role, body):
            return [Line(indent, f"{role}:", first, first), *_block(body, indent + STEP)]
        case ast.IfStmt():
            return _if(stmt, indent, "if")
        case ast.ForStmt(var, iterable, body):
            header = f"for {var} in {format_expr(iterable)}:"
            return [Line(indent, header, first, first), *_block(body, indent + STEP)]
    return [Line(indent, _simple_stmt(stmt), first, last)]


def _simple_stmt(stmt: ast.Stmt) -> str:
    match stmt:
        case ast.TextStmt(text):
            return _string(text)
        case ast.GenStmt(target, constraint, stop, max_tokens, keep_stop):
            text = f"{target} = gen"
            text += f" {format_constraint(constraint)}" if constraint is not None else ""
            text += f" stop {_string(stop)}" if stop is not None else ""
            text += " keep stop" if keep_stop else ""
            return text + (f" max {max_tokens} tokens" if max_tokens is not None else "")
        case ast.LetStmt(name, value):
            return f"let {name} = {format_expr(value)}"
        case ast.CallStmt(call):
            return format_expr(call)
        case ast.FactorStmt(weight):
            return f"factor {format_expr(weight)}"
        case ast.ConditionStmt(condition):
            return f"condition {format_expr(condition)}"
        case ast.ReturnStmt(value):
            return f"return {format_expr(value)}"
    raise TypeError(f"not a statement: {stmt!r}")


def _if(stmt: ast.IfStmt, indent: str, keyword: str) -> list[Line]:
    line = stmt.span.line
    lines = [Line(indent, f"{keyword} {format_expr(stmt.condition)}:", line, line)]
    lines += _block(stmt.body, indent + STEP)
    if len(stmt.orelse) == 1 and isinstance(stmt.orelse[0], ast.IfStmt):
        lines += _if(stmt.orelse[0], indent, "elif")
    elif stmt.orelse:
        lines.append(Line(indent, "else:", stmt.else_line, stmt.else_line))
        lines += _block(stmt.orelse, indent + STEP)
    return lines


def _string(string: ast.String) -> str:
    return quote(string, format_expr)


# --- expressions ---------------------------------------------------------------------------------

def _expr(expr: ast.Expr) -> tuple[int, str]:
    match expr:
        case ast.Name(name):
            return ATOM_PREC, name
        case ast.Number(value):
            return (ATOM_PREC if value >= 0 else NEG_PREC), _number(value)
        case ast.Bool(value):
            return ATOM_PREC, "true" if value else "false"
        case ast.String():
            return ATOM_PREC, _string(expr)
        case ast.ListExpr(items):
            return ATOM_PREC, f"[{', '.join(format_expr(i) for i in items)}]"
        case ast.Attribute(value, attr):
            return POSTFIX_PREC, f"{_postfix_base(value)}.{attr}"
        case ast.Index(value, index):
            return POSTFIX_PREC, f"{_postfix_base(value)}[{format_expr(index)}]"
        case ast.Call(func, args, kwargs):
            shown = [format_expr(a) for a in args] + [f"{k}={format_expr(v)}" for k, v in kwargs]
            return POSTFIX_PREC, f"{_postfix_base(func)}({', '.join(shown)})"
        case ast.Unary("not", operand):
            return NOT_PREC, f"not {format_expr(operand, NOT_PREC)}"
        case ast.Unary("-", operand):
            return NEG_PREC, f"-{format_expr(operand, NEG_PREC)}"
        case ast.Binary(op, left, right):
            prec = ast.BINARY_OPS[op]
            # Left-associative; comparisons do not chain, so both sides bind tighter.
            left_min = prec + 1 if op in ast.COMPARISONS else prec
            return prec, f"{format_expr(left, left_min)} {op} {format_expr(right, prec + 1)}"
    raise TypeError(f"not an expression: {expr!r}")


def _postfix_base(expr: ast.Expr) -> str:
    # A number before `.x` would lex as a decimal point: parenthesize it.
    return f"({format_expr(expr)})" if isinstance(expr, ast.Number) else format_expr(expr, POSTFIX_PREC)


def _number(value: int | float) -> str:
    return repr(value)


# --- constraints ---------------------------------------------------------------------------------

def _constraint(c: ast.Constraint) -> tuple[int, str]:
    match c:
        case ast.RegexC(pattern):
            return C_ATOM_PREC, f"regex {quote(pattern, verbatim=True)}"
        case ast.JsonC(ast.NamedC(name)):
            return C_ATOM_PREC, f"json {name}"
        case ast.JsonC(schema):
            return C_ATOM_PREC, f"json {quote(schema, verbatim=True)}"
        case ast.LarkC(grammar):
            return C_ATOM_PREC, f"lark {quote(grammar, verbatim=True)}"
        case ast.ChoiceC(options):
            return C_ATOM_PREC, f"choice [{', '.join(_string(o) for o in options)}]"
        case ast.LiteralC(text):
            return C_ATOM_PREC, _string(text)
        case ast.NamedC(name):
            return C_ATOM_PREC, name
        case ast.BinaryC(op, left, right):
            prec = UNION_PREC if op == "|" else INTER_PREC
            return prec, f"{format_constraint(left, prec)} {op} {format_constraint(right, prec + 1)}"
        case ast.WhereC(constraint, condition):
            return WHERE_PREC, f"{format_constraint(constraint, WHERE_PREC)} where {format_expr(condition)}"
    raise TypeError(f"not a constraint: {c!r}")


# --- inference -----------------------------------------------------------------------------------

def _infer_block(stmts: tuple[ast.InferStmt, ...], indent: str) -> list[Line]:
    return [line for stmt in stmts for line in _infer(stmt, indent)]


def _infer(stmt: ast.InferStmt, indent: str) -> list[Line]:
    first, last = stmt.span.line, stmt.span.end_line
    match stmt:
        case ast.ForHole(hole, body):
            return [Line(indent, f"for {hole}:", first, first), *_infer_block(body, indent + STEP)]
        case ast.Smc(positional, options, body) if body:
            header = _words("smc", positional, options) + ":"
            inner = [Line(indent + STEP, _smc_item(item), item.span.line, item.span.end_line) for item in body]
            return [Line(indent, header, first, first), *inner]
    return [Line(indent, _simple_infer(stmt), first, last)]


def _simple_infer(stmt: ast.InferStmt) -> str:
    match stmt:
        case ast.Greedy():
            return "greedy"
        case ast.Sample(chain):
            return "sample" + (f" {_chain(chain)}" if chain is not None else "")
        case ast.Awrs():
            return "awrs"
        case ast.Smc(positional, options):
            return _words("smc", positional, options)
        case ast.Method(kind, positional, options):
            return _words(kind, positional, options)
        case ast.BestOf(positional, options, by):
            return _words("best_of", positional, options) + f" by {format_expr(by)}"
        case ast.Speculate(variant, positional, options):
            return _words(f"speculate {variant}", positional, options)
        case ast.Enumerate(hole):
            return f"enumerate {hole}"
        case ast.Heal():
            return "heal"
        case ast.Boundary(kind):
            return f"boundary {kind}"
        case ast.Draws(count):
            return f"draws {count}"
        case ast.Seed(value):
            return f"seed {value}"
    raise TypeError(f"not an inference statement: {stmt!r}")


def _smc_item(item: ast.Propose | ast.Twist) -> str:
    if isinstance(item, ast.Twist):
        return f"twist {item.potential}" + (f" every {item.every} tokens" if item.every is not None else "")
    if item.method == "awrs":
        return "propose awrs"
    return "propose sample" + (f" {_chain(item.chain)}" if item.chain is not None else "")


def _chain(chain: ast.Chain) -> str:
    return " | ".join(_words(s.name, s.positional, s.options) for s in chain.stages)


def _words(head: str, positional: ast.OptionValue | None, options) -> str:
    words = [head]
    if positional is not None:
        words.append(_option_value(positional))
    for key, value in options:
        words += [key, _option_value(value)]
    return " ".join(words)


def _option_value(value: ast.OptionValue) -> str:
    match value:
        case ast.Number(number):
            return _number(number)
        case ast.Name(name):
            return name
        case ast.String():
            return _string(value)
    raise TypeError(f"not an option value: {value!r}")


# --- comments and blank lines ----------------------------------------------------------------------

_TOKENS = re.compile(r'(?P<string>[rR]?("""([^"\\]|\\[\s\S]|"(?!""))*"""|"([^"\\\n]|\\.)*"))|(?P<comment>#[^\n]*)')


@dataclass(frozen=True, slots=True)
class Comment:
    line: int
    text: str
    standalone: bool


def source_comments(source: str) -> dict[int, Comment]:
    """The comments of ``source`` by line (``#`` outside string literals)."""
    comments: dict[int, Comment] = {}
    starts = [0] + [m.end() for m in re.finditer("\n", source)]
    for match in _TOKENS.finditer(source):
        if match.group("comment") is None:
            continue
        offset = match.start()
        line = _line_of(starts, offset)
        standalone = not source[starts[line - 1]:offset].strip()
        comments[line] = Comment(line, match.group("comment").rstrip(), standalone)
    return comments


def _line_of(starts: list[int], offset: int) -> int:
    low, high = 0, len(starts) - 1
    while low < high:
        mid = (low + high + 1) // 2
        if starts[mid] <= offset:
            low = mid
        else:
            high = mid - 1
    return low + 1


def _weave(lines: list[Line], source: str) -> str:
    """Join the lines, putting back the source's comments and single blank lines between them."""
    comments = source_comments(source) if source else {}
    blank = {n + 1 for n, text in enumerate(source.splitlines()) if not text.strip()}
    out: list[str] = []
    cursor = 0
    for line in lines:
        if line.first == -1:
            _blank(out)
            continue
        if line.first > cursor:
            for n in range(cursor + 1, line.last):
                if n in comments:  # comments between statements, or inside a multi-line one
                    out.append(line.indent + comments[n].text)
                elif n in blank and n < line.first and out and not out[-1].endswith(":"):
                    _blank(out)
            cursor = line.last
        text = line.indent + line.text
        trailing = comments.get(line.last) if line.last == cursor else None
        if trailing is not None and not trailing.standalone:
            text += "  " + trailing.text
        out.append(text)
    for n in sorted(c for c in comments if c > cursor):
        out.append(comments[n].text)
    return "\n".join(out).strip("\n") + "\n"


def _blank(out: list[str]) -> None:
    if out and out[-1] != "":
        out.append("")
