"""The deterministic text form of the IR: one operation a line, blocks indented (golden fixtures,
``genweave explain``, ``GENWEAVE_DEBUG``).

>>> from genweave.compiler import ir
>>> print(print_program(ir.Program("p", (ir.Param("x", "str"),), "str", None,
...     (ir.Emit(("Say ", ir.Ref("x"))), ir.Hole("y", ir.Regex("[a-z]+"), None, 5), ir.Return(ir.Ref("y"))),
...     ir.Decoding())))
program p(x: str) -> str
  emit 'Say ' $x
  hole y in regex('[a-z]+') max 5
  return $y
  decode sample draws=1
"""

from __future__ import annotations

from genweave.compiler import ir


def print_program(program: ir.Program) -> str:
    params = ", ".join(f"{p.name}: {p.type}" for p in program.params)
    returns = f" -> {program.returns}" if program.returns else ""
    model = f" on {_model(program.model)}" if program.model else ""
    lines = [f"program {program.name}({params}){returns}{model}"]
    lines += _ops(program.ops, "  ")
    lines.append(f"  decode {print_decoding(program.decoding)}")
    return "\n".join(lines)


def _model(model: ir.ModelRef) -> str:
    text = model.name + (" chat" if model.chat else "") + (" bytes" if model.bytes else "")
    if model.members:
        text += " ensemble(" + ", ".join(f"{m.name}:{w!r}" for m, w in model.members) + ")"
    return text


def _ops(ops: tuple[ir.Op, ...], indent: str) -> list[str]:
    lines: list[str] = []
    for op in ops:
        match op:
            case ir.If(condition, then, orelse):
                lines.append(f"{indent}if {print_expr(condition)}:")
                lines += _ops(then, indent + "  ")
                if orelse:
                    lines.append(f"{indent}else:")
                    lines += _ops(orelse, indent + "  ")
            case ir.For(var, iterable, body):
                lines.append(f"{indent}for {var} in {print_expr(iterable)}:")
                lines += _ops(body, indent + "  ")
            case ir.Call(binding, program, scope, args, body, result):
                shown = ", ".join(f"{k}={print_expr(v)}" for k, v in args)
                target = f"{binding} = " if binding else ""
                lines.append(f"{indent}call {target}{program}({shown}) as {scope}:")
                lines += _ops(body, indent + "  ")
                lines.append(f"{indent}  result {print_expr(result)}")
            case _:
                lines.append(indent + _op(op))
    return lines


def _op(op: ir.Op) -> str:
    match op:
        case ir.Emit(parts):
            return "emit " + " ".join(repr(p) if isinstance(p, str) else print_expr(p) for p in parts)
        case ir.OpenRole(role):
            return f"open {role}"
        case ir.CloseRole(role):
            return f"close {role}"
        case ir.Hole():
            return _hole(op)
        case ir.Let(name, value):
            return f"let {name} = {print_expr(value)}"
        case ir.Factor(weight):
            return f"factor {print_expr(weight)}"
        case ir.Condition(condition):
            return f"condition {print_expr(condition)}"
        case ir.Return(value):
            return f"return {print_expr(value)}"
    raise TypeError(f"not an IR operation: {op!r}")


def _hole(hole: ir.Hole) -> str:
    text = f"hole {hole.name}"
    if hole.constraint is not None:
        text += f" in {print_constraint(hole.constraint)}"
    if hole.stop is not None:
        text += f" stop {hole.stop!r}" + (" keep" if hole.keep_stop else "")
    if hole.max_tokens is not None:
        text += f" max {hole.max_tokens}"
    if hole.decoding is not None:
        text += f" with [{_hole_decoding(hole.decoding)}]"
    notes = []
    if hole.constraint_class is not None:
        notes.append(f"class={hole.constraint_class}")
    if hole.method is not None:
        notes.append(f"method={hole.method}")
    if hole.cost is not None:
        notes.append(f"cost={hole.cost:g}")
    if hole.guarantee is not None:
        notes.append(f"guarantee={hole.guarantee}")
    healed = [side for side, on in (("before", hole.heal_before), ("after", hole.heal_after)) if on]
    if healed:
        notes.append("boundary=" + ",".join(healed))
    return text + (f" {{{' '.join(notes)}}}" if notes else "")


def print_expr(expr: ir.Expr) -> str:
    match expr:
        case ir.Ref(name):
            return f"${name}"
        case ir.Const(value):
            return repr(value)
        case ir.ListValue(items):
            return f"[{', '.join(print_expr(i) for i in items)}]"
        case ir.Attr(value, name):
            return f"{print_expr(value)}.{name}"
        case ir.Index(value, index):
            return f"{print_expr(value)}[{print_expr(index)}]"
        case ir.Unary(op, operand):
            return f"({op}{' ' if op == 'not' else ''}{print_expr(operand)})"
        case ir.Binary(op, left, right):
            return f"({print_expr(left)} {op} {print_expr(right)})"
        case ir.BuiltinCall(name, args):
            return f"{name}({', '.join(print_expr(a) for a in args)})"
        case ir.ExternCall(extern, args):
            return f"{_extern(extern)}({', '.join(print_expr(a) for a in args)})"
        case ir.Format(parts):
            return "format(" + ", ".join(repr(p) if isinstance(p, str) else print_expr(p) for p in parts) + ")"
    raise TypeError(f"not an IR expression: {expr!r}")


def _extern(extern: ir.Extern) -> str:
    return f"{extern.kind} {extern.name}<{extern.ref}{' prefix' if extern.prefix else ''}>"


def print_constraint(c: ir.ConstraintIR) -> str:
    match c:
        case ir.Regex(pattern):
            return f"regex({pattern!r})"
        case ir.Choice(options):
            return f"choice({', '.join(map(repr, options))})"
        case ir.Literal(text):
            return f"literal({text!r})"
        case ir.Builtin(name):
            return name
        case ir.Grammar(text):
            return f"grammar({text!r})"
        case ir.Json(schema):
            return f"json({schema!r})"
        case ir.Intersect(left, right):
            return f"({print_constraint(left)} & {print_constraint(right)})"
        case ir.Union(left, right):
            return f"({print_constraint(left)} | {print_constraint(right)})"
        case ir.Where(constraint, condition):
            return f"({print_constraint(constraint)} where {print_expr(condition)})"
    raise TypeError(f"not an IR constraint: {c!r}")


def print_chain(chain: tuple[ir.SamplerStage, ...]) -> str:
    return " | ".join(s.name + "".join(f" {k}={v!r}" if isinstance(v, str) else f" {k}={v}" for k, v in s.params)
                      for s in chain)


def print_decoding(d: ir.Decoding) -> str:
    text = d.method + (f" {print_chain(d.chain)}" if d.chain else "")
    text += f" draws={d.draws}"
    if d.seed is not None:
        text += f" seed={d.seed}"
    if d.awrs:
        text += " awrs"
    if d.search is not None:
        text += f" {_search(d.search)}"
    if d.speculate is not None:
        text += f" {_speculate(d.speculate)}"
    if d.heal:
        text += " heal"
    if d.boundary is not None:
        text += f" boundary={d.boundary}"
    if d.enumerate:
        text += f" enumerate={','.join(d.enumerate)}"
    if d.guarantee is not None:
        text += f" guarantee={d.guarantee}"
    return text


def _search(search: ir.Search) -> str:
    match search:
        case ir.Smc(particles, ess, resample, propose, chain, twists):
            text = f"smc(particles={particles}, ess={ess}, resample={resample}, propose={propose}"
            text += f" {print_chain(chain)}" if chain else ""
            for extern, every in twists:
                text += f", twist={_extern(extern)} every {every}"
            return text + ")"
        case ir.Rejection(max_tries):
            return f"rejection(max={max_tries})"
        case ir.Beam(width, penalty, early, stochastic, returns):
            kind = "stochastic" if stochastic else "deterministic"
            return (f"beam(width={width}, length_penalty={penalty}, early_stopping={early}, kind={kind}, "
                    f"returns={returns})")
        case ir.BestOf(n, score):
            return f"best_of(n={n}, by={print_expr(score)})"
        case ir.Cautious(candidates, low, high, segment):
            return f"cautious(candidates={candidates}, entropy_low={low}, entropy_high={high}, segment={segment})"
        case ir.LookaheadTree(width, depth, rollouts, absolute, relative, edit):
            return (f"lookahead_tree(width={width}, depth={depth}, rollouts={rollouts}, absolute={absolute}, "
                    f"relative={relative}, edit={edit})")
    raise TypeError(f"not a search: {search!r}")


def _speculate(s: ir.Speculate) -> str:
    options = ([f"draft={s.draft.name}"] if s.draft is not None else []) + [f"{k}={v!r}" for k, v in s.params]
    return f"speculate {s.variant}({', '.join(options)})"


def _hole_decoding(d: ir.HoleDecoding) -> str:
    text = (d.method or "") + (f" {print_chain(d.chain)}" if d.chain else "")
    text += " awrs" if d.awrs else ""
    text += f" {_speculate(d.speculate)}" if d.speculate is not None else ""
    text += " heal" if d.heal else ""
    return (text + (f" boundary={d.boundary}" if d.boundary else "")).strip()
