"""``enumerate x`` inside a program run: each row becomes one row per text the hole can produce.

At hole ``x`` the exact target of the hole given the row's context (:mod:`.enumeration`: the
model after the program's chain, restricted to the hole's language, ``max N tokens`` and a
``prefix`` predicate) is computed, and the row is replaced by one row per token sequence ``y`` of
positive probability ``p(y) = pi(y) / Z`` (most probable first), whose log-weight and log-prob grow
by ``log p(y)``. The rest of the program runs on every row, so ``Results.posterior`` (weights
normalized per draw) is the exact distribution of the returned value given what was drawn before
the hole; a ``where`` condition on complete values removes the rows it rejects (weight zero), which
renormalizes the posterior exactly. The hole's text comes with its tokens as the model state's
rows (one batched ``extend``), never re-tokenized.
"""

from __future__ import annotations

from typing import Any

import torch

from genweave.dsl.errors import NoValidTokenError
from genweave.runtime.inference.enumeration import enumerate_hole
from genweave.runtime.inference.hole import Hole
from genweave.runtime.inference.potentials import predicate
from genweave.runtime.inference.stepping import Decoded


def expand_hole(run: Any, hole: Any, group: Any) -> None:
    """Replace each row of ``group`` by its outcomes of ``hole`` (module docstring)."""
    run._flush(group)
    model, rows = run.model, list(group.rows)
    problem = _problem(run, hole)
    positions, outcomes = [], []
    for k in range(len(rows)):
        e = enumerate_hole(model, [], problem, state=model.select(group.state, [k]))
        if not e.log_weights:
            raise NoValidTokenError(f"enumerate: hole '{hole.name}' ({hole.where}) has no text of positive "
                                    "probability in this context", hint="check the hole's constraint and budget")
        ranked = sorted(e.log_weights.items(), key=lambda kv: (-kv[1], kv[0]))
        positions += [k] * len(ranked)
        outcomes += [(ids, w - e.log_z, e.texts[ids]) for ids, w in ranked]
    firsts = {k: positions.index(k) for k in range(len(rows))}
    new_rows: list[int] = []
    extra = run.grow([rows[k] for i, k in enumerate(positions) if firsts[k] != i])
    spare = iter(extra)
    for i, k in enumerate(positions):
        new_rows.append(rows[k] if firsts[k] == i else next(spare))
    state = model.select(group.state, torch.as_tensor(positions, dtype=torch.long, device=model.device))
    group.rows, group.state = new_rows, _extend(model, state, [ids for ids, _, _ in outcomes])
    for row, (_, log_p, _) in zip(new_rows, outcomes):
        run.weight[row] += log_p
        run.logprob[row] += log_p
    texts = [text for _, _, text in outcomes]
    run._finish_hole(hole, Decoded(texts, [list(ids) for ids, _, _ in outcomes], [False] * len(texts), masked=False),
                     new_rows)


def _problem(run: Any, hole: Any) -> Hole:
    potentials = ()
    if hole.prefix is not None and (hole.stop is None or hole.keep_stop):
        potentials = (predicate(hole.prefix, prefix=True, name=f"where on {hole.name}"),)
    chain = run.plan.chain
    compiled = chain.compile(len(run.model.vocab), device=run.model.device, batch=1) if len(chain) else None
    return Hole(hole.constraint, potentials, hole.max_tokens, compiled)


def _extend(model: Any, state: Any, sequences: list[tuple[int, ...]]) -> Any:
    width = max((len(s) for s in sequences), default=0)
    if width == 0:
        return state
    grid = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, s in enumerate(sequences):
        grid[i, :len(s)] = torch.tensor(s, dtype=torch.long)
    lengths = [len(s) for s in sequences]
    ragged = None if min(lengths) == width else torch.as_tensor(lengths, device=model.device)
    state, _ = model.extend(state, grid.to(model.device), ragged)
    return state
