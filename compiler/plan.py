"""Bind an IR program to the runtime: compiled constraints, closures for values, the chain.

Inlined program calls get their own namespace: every name the callee binds (its parameters, holes,
``let`` and loop variables) is stored as ``scope.name`` in the trace's values, which is also how
their hole values are reported (``Result.holes["scope.name"]``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from genweave.compiler import ir
from genweave.compiler.bind_constraints import bind_hole
from genweave.compiler.evaluate import Evaluator
from genweave.compiler.passes.classify_constraints import predicate_class
from genweave.runtime import execute
from genweave.runtime.inference.potentials import extern
from genweave.runtime.inference.program import ParticlePlan
from genweave.runtime.inference.speculative.run import SpeculatePlan
from genweave.runtime.samplers import ChainSpec, build_chain, fold
from genweave.runtime.vocab import Vocabulary

# How a hole's text becomes its value when its whole constraint is a typed one.
_PARSERS: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "bool": lambda text: text == "true"}


def plan(program: ir.Program, vocab: Vocabulary, *, file: str = "<source>", source: str | None = None,
         functions: Mapping[str, Callable[..., Any]] | None = None) -> execute.Plan:
    """Bind ``program`` to a model's vocabulary; ``functions`` are the host's extern functions."""
    binder = _Binder(vocab, file, source, Evaluator(functions), program.decoding)
    decoding = program.decoding
    search = decoding.search
    return execute.Plan(binder.ops(program.ops, binder.evaluator), decoding_chain(decoding),
                        chat=bool(program.model and program.model.chat),
                        guarantee=decoding.guarantee or "local",
                        rejection=search.max_tries if isinstance(search, ir.Rejection) else None,
                        particles=particle_plan(decoding, binder.evaluator),
                        search=search_plan(decoding, binder.evaluator),
                        enumerate=tuple(decoding.enumerate),
                        level="bytes" if is_byte_level(program.model) else "tokens",
                        speculate=speculate_plan(decoding))


def is_byte_level(model: ir.ModelRef | None) -> bool:
    """Whether a program's model runs at byte level: declared ``bytes``, or an ensemble."""
    return model is not None and (model.bytes or bool(model.members))


def speculate_plan(decoding: ir.Decoding | ir.HoleDecoding) -> SpeculatePlan | None:
    """A ``speculate`` statement (the program's or a hole's) bound for the runtime (its draft model by spec)."""
    s = decoding.speculate
    if s is None:
        return None
    params = dict(s.params)
    return SpeculatePlan(s.variant, int(params.get("k", 4)), n=int(params.get("n", 2)),
                         layers=int(params.get("layers", 0)), draft=s.draft.spec if s.draft is not None else None,
                         candidates=int(params.get("candidates", 4)), width=int(params.get("width", 2)),
                         depth=int(params.get("depth", 4)), tree=str(params.get("tree", "static")))


def search_plan(decoding: ir.Decoding, evaluator: Evaluator) -> Any:
    """The runtime's form of a search or selection (``beam``, ``best_of``, ``cautious``,
    ``lookahead_tree``), else None."""
    from genweave.runtime.inference.cautious import Cautious
    from genweave.runtime.inference.lookahead import LookaheadTree
    from genweave.runtime.inference.search import BeamSearch, BestOf

    match decoding.search:
        case ir.Beam(width, penalty, early, stochastic, returns):
            return BeamSearch(width, penalty, early, stochastic, returns)
        case ir.BestOf(n, score):
            return BestOf(n, evaluator.compile(score))
        case ir.Cautious(candidates, low, high, segment):
            return Cautious(candidates, low, high, segment)
        case ir.LookaheadTree(width, depth, rollouts, absolute, relative, edit):
            return LookaheadTree(rollouts, width, depth, absolute, relative, edit)
    return None


def particle_plan(decoding: ir.Decoding, evaluator: Evaluator) -> ParticlePlan | None:
    """The particle inference of ``smc`` (or of plain ``awrs``: one particle per draw), else None."""
    search = decoding.search
    if isinstance(search, ir.Smc):
        twist, every = None, 1
        if search.twists:
            extern_ir, every = search.twists[0]  # the checker allows one twist
            twist = extern(evaluator.function(extern_ir), "potential", prefix=True, name=extern_ir.name)
        chain = fold(build_chain([(s.name, dict(s.params)) for s in search.chain])) if search.chain else None
        proposal = "awrs" if search.propose == "awrs" or decoding.awrs else "sample"
        return ParticlePlan(search.particles, search.ess, search.resample, proposal, chain, twist, every)
    if decoding.awrs and search is None:
        return ParticlePlan(1, 0.0, "multinomial", "awrs")
    return None


def decoding_chain(decoding: ir.Decoding | ir.HoleDecoding) -> ChainSpec:
    """The folded sampler chain of a decoding (``greedy()`` for greedy decoding)."""
    if decoding.method == "greedy":
        return build_chain([("greedy", {})])
    return fold(build_chain([(s.name, dict(s.params)) for s in decoding.chain]))


class _Binder:
    def __init__(self, vocab: Vocabulary, file: str, source: str | None, evaluator: Evaluator,
                 decoding: ir.Decoding):
        self.vocab, self.file, self.source, self.evaluator = vocab, file, source, evaluator
        self.decoding = decoding

    def ops(self, ops: tuple[ir.Op, ...], ev: Evaluator) -> tuple[execute.Step, ...]:
        steps: list[execute.Step] = []
        for op in ops:
            steps.extend(self.op(op, ev))
        return tuple(steps)

    def op(self, op: ir.Op, ev: Evaluator) -> list[execute.Step]:
        match op:
            case ir.Emit(parts):
                return [execute.Emit(ev.render(parts))]
            case ir.OpenRole(role):
                return [execute.Role(role, opening=True)]
            case ir.CloseRole(role):
                return [execute.Role(role, opening=False)]
            case ir.Hole():
                return [self.hole(op, ev)]
            case ir.Let(name, value):
                return [execute.Assign(ev.rename(name), ev.compile(value))]
            case ir.If(condition, then, orelse):
                return [execute.Branch(ev.compile(condition), self.ops(then, ev), self.ops(orelse, ev))]
            case ir.For(var, iterable, body):
                return [execute.Loop(ev.rename(var), ev.compile(iterable), self.ops(body, ev))]
            case ir.Call():
                return self.call(op, ev)
            case ir.Factor(weight):
                return [execute.Weigh(_as_log_weight(ev.compile(weight)))]
            case ir.Condition(condition):
                test = ev.compile(condition)
                return [execute.Weigh(lambda env: 0.0 if test(env) else -math.inf)]
            case ir.Return(value):
                return [execute.Return(ev.compile(value))]
        raise TypeError(f"cannot plan {op!r}")

    def call(self, op: ir.Call, ev: Evaluator) -> list[execute.Step]:
        outer = ev.rename
        inner = Evaluator(ev.functions, rename=lambda name, scope=op.scope: outer(f"{scope}.{name}"))
        steps: list[execute.Step] = [execute.Assign(inner.rename(name), ev.compile(value))
                                     for name, value in op.args]
        steps.extend(self.ops(op.body, inner))
        if op.binding is not None:
            steps.append(execute.Assign(outer(op.binding), inner.compile(op.result)))
        return steps

    def hole(self, op: ir.Hole, ev: Evaluator) -> execute.Fill:
        where = f"{self.file}:{op.span.line}:{op.span.col}"
        check = prefix = None
        constraint_ir = op.constraint
        if isinstance(constraint_ir, ir.Where):
            test = ev.compile(constraint_ir.condition)
            name = ev.rename(op.name)
            check = _text_check(test, name)
            if predicate_class(constraint_ir.condition, op.name) == "prefix predicate":
                prefix = ev.function(constraint_ir.condition.extern)  # what smc/awrs check per token
            constraint_ir = constraint_ir.constraint
        bound = ir.Hole(op.name, constraint_ir, op.stop, op.max_tokens, span=op.span, keep_stop=op.keep_stop)
        heal = op.decoding.heal if op.decoding is not None else self.decoding.heal
        return execute.Fill(ev.rename(op.name), op.max_tokens, op.stop, where,
                            bind_hole(bound, self.vocab, self.file, self.source), _parser(constraint_ir),
                            keep_stop=op.keep_stop, check=check, prefix=prefix,
                            heal=heal and op.heal_before, speculate=_hole_speculation(op.decoding),
                            chain=_hole_chain(op.decoding))


def _hole_chain(decoding: ir.HoleDecoding | None) -> ChainSpec | None:
    """A hole's own sampler chain (``execute.Fill.chain``): its ``for HOLE:`` block's `sample CHAIN`
    or `greedy`; None when the block names neither (the program's chain applies)."""
    if decoding is None or decoding.method is None:
        return None
    return decoding_chain(decoding)


def _hole_speculation(decoding: ir.HoleDecoding | None) -> SpeculatePlan | bool | None:
    """A hole's own ``speculate`` (``execute.Fill.speculate``): its ``for HOLE:`` block replaces the
    program's inference for the hole, so a block without ``speculate`` turns speculation off (False);
    None (no block): the program's."""
    if decoding is None:
        return None
    return speculate_plan(decoding) or False


def _parser(constraint: ir.ConstraintIR | None) -> Callable[[str], Any] | None:
    if isinstance(constraint, ir.Builtin):
        return _PARSERS.get(constraint.name)
    if isinstance(constraint, ir.Json):
        return json.loads
    return None


def _text_check(test: Callable, name: str) -> Callable[[Mapping[str, Any], str], bool]:
    """A complete-text predicate: ``test`` evaluated with the hole bound to its text."""
    return lambda env, text: bool(test({**env, name: text}))


def _as_log_weight(weight: Callable) -> Callable:
    def log_weight(env) -> float:
        value = weight(env)
        return float(value) if not isinstance(value, bool) else (0.0 if value else -math.inf)

    return log_weight
