"""Exact output distributions of programs on small models, by enumerating every trace.

Two laws of the same program are computed:

* ``target="local"``: the law of what ``sample``/``greedy`` decoding draws — at every step the
  model's next-token distribution restricted to the tokens the hole's constraint allows,
  renormalized, then passed through the program's sampler chain (greedy is a point mass);
* ``target="global"``: the program's target ``pi / Z`` over token sequences — each trace weighted by
  the product of the chain-processed model's unmasked step probabilities, end-of-sequence included,
  and by ``exp`` of its factors; kept only when every hole's text is complete in its language and
  every ``where`` and ``condition`` holds; then normalized. Rejection sampling draws from this law.

The two differ whenever a constraint prunes mass that the model would have spent elsewhere; masked
decoding is exact for the first, SMC converges to the second. Enumeration follows the executor's
semantics from their definitions (not from its code), which makes it an oracle for the runtime.

Outcomes are keyed by the tuple of each hole's token ids, in hole order; ``value_law`` folds them to
returned values. Traces that reach a step where nothing is allowed (the executor raises there, e.g.
a budget too small for a constraint) are left out; ``dead_end`` is their probability under the local
law, and ``probs`` is normalized over the other traces.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from genweave.runtime import chat
from genweave.runtime.execute import Assign, Branch, Emit, Fill, Loop, Plan, Return, Role, Weigh, hole_chain
from genweave.runtime.models.base import LanguageModel
from genweave.runtime.samplers.draw import unpack_mask
from genweave.runtime.textmask import text_token_mask

MAX_TRACES = 200_000


@dataclass(frozen=True)
class ExactLaw:
    """``probs``: outcome (hole token tuples) -> probability; ``values``: outcome -> returned value."""

    probs: dict[tuple[tuple[int, ...], ...], float]
    values: dict[tuple[tuple[int, ...], ...], Any]
    log_z: float  # log of the total unnormalized mass (0 for the local law)
    dead_end: float = 0.0  # local law: probability of reaching a step where no token is allowed

    def value_law(self) -> dict[Any, float]:
        law: dict[Any, float] = {}
        for outcome, p in self.probs.items():
            law[self.values[outcome]] = law.get(self.values[outcome], 0.0) + p
        return law


def exact_distribution(program, model: LanguageModel, args: Mapping[str, Any] | None = None, *,
                       target: str = "local") -> ExactLaw:
    """Enumerate a program's outputs exactly (see the module docstring).

    ``program`` is a compiled program (``module.name``); ``model`` must expose
    ``next_token_logprobs(ids)`` (e.g. :class:`~genweave.testing.ToyLM`). Every hole needs a finite
    set of traces (``max N tokens`` or a finite language).
    """
    from genweave.compiler.plan import plan as bind

    values = program.bind(args or {})
    return plan_distribution(bind(program.ir, model.vocab, file=program.module.file), model, values,
                             target=target)


def plan_distribution(plan: Plan, model: LanguageModel, values: Mapping[str, Any], *,
                      target: str = "local") -> ExactLaw:
    """:func:`exact_distribution` of a plan already bound to ``model`` (runtime-level tests)."""
    if target not in ("local", "global"):
        raise ValueError(f"target must be 'local' or 'global', not {target!r}")
    walker = _Walker(plan, model, target)
    walker.walk(plan.steps, _Trace(dict(values), [], "", "", [], ()), 0.0)
    total = sum(math.exp(lp) for lp in walker.mass.values())
    if total <= 0:
        raise ValueError("the program has no complete trace under this model")
    probs = {k: math.exp(lp) / total for k, lp in walker.mass.items()}
    log_z = math.log(total) if target == "global" else 0.0
    return ExactLaw(probs, walker.values, log_z, walker.dead_end)


@dataclass
class _Trace:
    env: dict[str, Any]
    tokens: list[int]
    pending: str
    emitted: str
    messages: list[dict[str, str]]
    holes: tuple[tuple[int, ...], ...]

    def copy(self) -> _Trace:
        return _Trace(dict(self.env), list(self.tokens), self.pending, self.emitted,
                      [dict(m) for m in self.messages], self.holes)


class _Walker:
    def __init__(self, plan: Plan, model: LanguageModel, target: str):
        self.plan, self.model, self.target = plan, model, target
        self.chains: dict[int, Any] = {}  # id(ChainSpec) -> compiled chain
        if target == "global" and self._chain(plan.chain).is_greedy:
            raise ValueError("the global target of greedy decoding is not a distribution; use target='local'")
        self.allowed = text_token_mask(model.vocab, "cpu")
        self.mass: dict[tuple, float] = {}
        self.dead_end = 0.0
        self.values: dict[tuple, Any] = {}
        self.eos = frozenset(model.vocab.eos_ids)
        self.eos_mask = torch.zeros_like(self.allowed)
        self.eos_mask[list(self.eos)] = True

    def walk(self, steps: tuple, trace: _Trace, logp: float) -> None:
        """Follow one trace through ``steps`` (the rest of the program), branching at holes."""
        while steps:
            step, steps = steps[0], steps[1:]
            match step:
                case Fill():
                    self._fill(step, steps, trace, logp)
                    return
                case Branch(test, then, orelse):
                    steps = (then if test(trace.env) else orelse) + steps
                case Loop(var, items, body):
                    unrolled = []
                    for item in list(items(trace.env)):
                        unrolled += [Assign(var, lambda env, item=item: item), *body]
                    steps = tuple(unrolled) + steps
                case Return(value):
                    trace.env["__return__"] = value(trace.env)
                    break
                case Weigh(log_weight) if self.target == "global":
                    logp += log_weight(trace.env)
                    if logp == -math.inf:
                        return
                case Weigh():
                    pass
                case _:
                    self._simple(step, trace)
        key = trace.holes
        self.mass[key] = _logaddexp(self.mass.get(key), logp)
        self.values[key] = trace.env.get("__return__")
        if len(self.mass) > MAX_TRACES:
            raise ValueError(f"more than {MAX_TRACES} traces: bound the holes with `max N tokens`")

    def _simple(self, step, trace: _Trace) -> None:
        match step:
            case Emit(render):
                text = render(trace.env)
                trace.pending += text
                if trace.messages:
                    trace.messages[-1]["content"] += text
            case Role(role, True):
                prefix = chat.open_message(self.model, trace.messages, role)
                trace.pending += chat.continuation(trace.emitted + trace.pending, prefix, self.model, role)
                trace.messages.append({"role": role, "content": ""})
            case Role(role, False):
                after = chat.close_message(self.model, trace.messages)
                trace.pending += chat.continuation(trace.emitted + trace.pending, after, self.model, role)
            case Assign(name, value):
                trace.env[name] = value(trace.env)

    def _fill(self, hole: Fill, rest: tuple, trace: _Trace, logp: float) -> None:
        if trace.pending:
            prefix = list(self.model.bos_ids) if not trace.tokens else []
            trace.tokens += prefix + self.model.encode(trace.pending)
            trace.emitted += trace.pending
            trace.pending = ""
        state = hole.constraint.initial() if hole.constraint is not None else None
        self._step(hole, rest, trace, [], b"", state, logp, [])

    def _step(self, hole: Fill, rest: tuple, trace: _Trace, generated: list[int], text: bytes, state,
              logp: float, masks: list[torch.Tensor]) -> None:
        allowed = self.allowed.clone()
        if hole.constraint is not None:
            allowed &= unpack_mask(hole.constraint.mask([state]), allowed.shape[-1])[0]
        elif hole.max_tokens is not None and len(generated) == hole.max_tokens:
            allowed &= self.eos_mask  # a full budget: the text must end here
        if not bool(allowed.any()):
            # The executor stops with an error here (a budget too small for the constraint, say);
            # under the local law this mass is reported apart, under the target it is simply zero.
            self.dead_end += math.exp(logp) if self.target == "local" else 0.0
            return
        masks = [*masks, allowed]
        step = self._step_logprobs(hole, trace.tokens, generated, masks)
        for token in torch.nonzero(allowed & torch.isfinite(step)).flatten().tolist():
            lp = float(step[token])
            if token in self.eos:
                if hole.constraint is None or hole.constraint.is_complete(state):
                    self._end_hole(hole, rest, trace, generated, text, logp + lp)
                continue
            nxt = hole.constraint.advance(state, token) if hole.constraint is not None else None
            if hole.constraint is not None and hole.constraint.is_dead(nxt):
                continue
            self._step(hole, rest, trace, [*generated, token], text + self.model.vocab.token_bytes[token],
                       nxt, logp + lp, masks)

    def _chain(self, spec: Any) -> Any:
        if id(spec) not in self.chains:
            self.chains[id(spec)] = spec.compile(len(self.model.vocab), batch=1)
            if self.target == "global" and self.chains[id(spec)].is_greedy:
                raise ValueError("the global target of greedy decoding is not a distribution; "
                                 "use target='local'")
        return self.chains[id(spec)]

    def _step_logprobs(self, hole: Fill, prompt: list[int], generated: list[int],
                       masks: list[torch.Tensor]) -> torch.Tensor:
        """Next-token log-probs of the law being enumerated (``[V]``), after the sampler chain.

        ``masks[i]`` is what step ``i`` of the hole allowed (the last one is this step's). Stateful
        samplers are replayed along the hole's tokens so far, each step under its own mask, as the
        executor advances them. Local law: the chain sees the mask (renormalized); global target:
        the chain's unmasked law (the caller restricts it to the mask without renormalizing).
        """
        chain = self._chain(hole_chain(self.plan, hole))
        state = chain.new_state(1, [prompt]) if chain.stateful else None
        context = list(prompt)
        for token, allowed in zip(generated, masks):
            if state is not None:
                chain.logprobs(self._model_row(context), state, mask=self._chain_mask(allowed))
                state.advance([token])
            context.append(token)
        return chain.logprobs(self._model_row(context), state, mask=self._chain_mask(masks[-1]))[0]

    def _chain_mask(self, allowed: torch.Tensor) -> torch.Tensor:
        return (allowed if self.target == "local" else self.allowed)[None]

    def _model_row(self, context: list[int]) -> torch.Tensor:
        return self.model.next_token_logprobs(context)[None]

    def _end_hole(self, hole: Fill, rest: tuple, trace: _Trace, generated: list[int], text: bytes,
                  logp: float) -> None:
        branch = trace.copy()
        decoded = text.decode("utf-8", errors="replace")
        cut = hole.stop and decoded.endswith(hole.stop) and not hole.keep_stop
        value = decoded[: len(decoded) - len(hole.stop)] if cut else decoded
        if hole.check is not None and self.target == "global" and not hole.check(branch.env, value):
            return  # a `where` predicate is part of the target: this text has weight zero
        branch.env[hole.name] = hole.parse(value) if hole.parse else value
        branch.tokens += generated
        branch.emitted += decoded
        if branch.messages:
            branch.messages[-1]["content"] += decoded
        branch.holes = (*branch.holes, tuple(generated))
        self.walk(rest, branch, logp)


def _logaddexp(a: float | None, b: float) -> float:
    if a is None:
        return b
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))
