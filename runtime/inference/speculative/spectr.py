"""SpecTr (Sun et al., NeurIPS 2023): ``K`` i.i.d. draft sequences, verified as a tree with K-SEQ.

Each row drafts ``K`` sequences of ``k`` tokens with the draft model (``K`` copies of the row in the
draft's batch, each through the program's chain and masks, so the copies are i.i.d. given the
history). Their prefixes are merged into a tree, scored by the target in one forward
(:meth:`LanguageModel.extend_tree`), and walked down: at depth ``t`` the *alive* drafts are those
equal to the accepted prefix, and their next tokens are i.i.d. draws from ``q`` at that prefix, so
K-SEQ (:func:`~genweave.runtime.inference.speculative.verify.verify_kseq`) over them emits a token
from the program's ``p`` exactly; an accepted token keeps the drafts that carry it alive, a rejected
one ends the round. With no alive draft left, the next token is drawn from ``p`` (the bonus).
Under ``greedy`` every copy drafts the same argmax chain and the walk keeps the target's argmax.
"""

from __future__ import annotations

from typing import Any

import torch

from genweave.runtime.inference.speculative.drafters import DraftRound, ModelDrafter
from genweave.runtime.inference.speculative.verify import verify_kseq
from genweave.runtime.models.base import LanguageModel
from genweave.runtime.samplers import gumbel_argmax


class SpecTrDrafter:
    """``candidates`` copies of every row in a :class:`ModelDrafter` over ``model``."""

    def __init__(self, model: LanguageModel, candidates: int, k: int):
        self.copies = candidates
        self.inner = ModelDrafter(model, k)

    def begin(self, contexts: list[list[int]]) -> None:
        self.inner.begin([c for c in contexts for _ in range(self.copies)])

    def propose(self, rounds: Any, limits: list[int]) -> tuple[list[list[int]], torch.Tensor | None]:
        """``K`` drafts per row (row ``b``'s copy ``j`` at ``b * K + j``) and their log-probs."""
        fill, n = rounds.fill, self.copies
        spread = [k for k in range(len(limits)) for _ in range(n)]
        contexts = [list(rounds.run_.tokens[rounds.rows[k]]) + fill.generated[k] for k in spread]
        fork = None if rounds.chain_state is None else rounds.chain_state.select(spread)
        states = [fill.states[k] for k in spread] if fill.states is not None else None
        draft = self.inner.propose(DraftRound(
            contexts, [limits[k] for k in spread], fill.eos, masks=rounds._masks, advance=rounds._advance,
            states=states, chain=rounds.chain, chain_state=fork, greedy=rounds.chain.is_greedy,
            generator=rounds.run_.generator))
        return draft.tokens, draft.logq

    def commit(self, path: list[list[int]], emitted: list[list[int]], ended: list[bool], drafts: list[list[int]]) -> None:
        """Tell the draft copies what each row emitted: a copy keeps its draft while it agrees."""
        n = self.copies
        accepted = []
        for index, draft in enumerate(drafts):
            kept = path[index // n]
            agree = 0
            while agree < min(len(draft), len(kept)) and draft[agree] == kept[agree]:
                agree += 1
            accepted.append(agree)
        rows = [i // n for i in range(len(drafts))]
        self.inner.commit(accepted, [emitted[b] for b in rows], [ended[b] for b in rows])


def merge(drafts: list[list[int]]) -> tuple[list[int], list[int], list[list[int]]]:
    """Merge sequences into a prefix tree: ``(tokens, parents, node_of)`` with ``node_of[j][t]`` the
    node of ``drafts[j][:t + 1]`` (parents before children, ``-1``: the root).

    >>> merge([[1, 2], [1, 3], [4]])
    ([1, 2, 3, 4], [-1, 0, 0, -1], [[0, 1], [0, 2], [3]])
    """
    index: dict[tuple[int, ...], int] = {}
    tokens, parents, node_of = [], [], []
    for draft in drafts:
        nodes = []
        for t in range(len(draft)):
            prefix = tuple(draft[:t + 1])
            if prefix not in index:
                index[prefix] = len(tokens)
                tokens.append(draft[t])
                parents.append(nodes[-1] if nodes else -1)
            nodes.append(index[prefix])
        node_of.append(nodes)
    return tokens, parents, node_of


def spectr_round(rounds: Any, drafter: SpecTrDrafter) -> None:
    """One SpecTr round of a :class:`~genweave.runtime.inference.speculative.run._HoleRounds`."""
    fill, run, device, n = rounds.fill, rounds.run_, rounds.device, drafter.copies
    active = list(fill.active)
    limits = [rounds.budget - d - 1 if on else 0 for d, on in zip(rounds.drawn, active)]
    drafts, logq = drafter.propose(rounds, limits)
    trees = [merge(drafts[b * n:(b + 1) * n]) if on else ([], [], [[]] * n) for b, on in enumerate(active)]
    offsets = [len(u) for u in rounds.unfed]
    width = max(o + len(t[0]) for o, t in zip(offsets, trees))
    pieces = torch.zeros((len(active), max(width, 1)), dtype=torch.long)
    parents = torch.full(pieces.shape, -1, dtype=torch.long)
    for b, (o, (tokens, ups, _)) in enumerate(zip(offsets, trees)):
        if o:
            pieces[b, 0] = rounds.unfed[b][0]
        pieces[b, o:o + len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        parents[b, o:o + len(tokens)] = torch.tensor([u + o if u >= 0 else o - 1 for u in ups], dtype=torch.long)
    lengths = torch.tensor([o + len(t[0]) for o, t in zip(offsets, trees)], device=device)
    before = rounds.model.logits(rounds.group.state)
    state, out = rounds.model.extend_tree(rounds.group.state, pieces.to(device), parents.to(device), lengths)
    run.stats.forwards += 1
    offset = torch.tensor(offsets, device=device)
    root_p = torch.where((offset > 0)[:, None], out[:, 0], before)
    path, drawn = _walk(rounds, root_p, out, offsets, drafts, logq, trees, active, n)
    kept = [([0] if o else []) + [o + trees[b][2][c][t] for t, c in enumerate(_carriers(p, drafts[b * n:(b + 1) * n]))]
            for b, (o, p) in enumerate(zip(offsets, path))]
    after = torch.stack([out[b, k[-1]] if k else before[b] for b, k in enumerate(kept)])
    rounds.group.state = rounds.model.keep_path(state, kept, after)
    drafter.commit(path, drawn, [not on for on in fill.active], drafts)
    for b, on in enumerate(active):
        if on:
            run.stats.verifications += 1
            run.stats.drafted += sum(len(d) for d in drafts[b * n:(b + 1) * n])
            run.stats.accepted += len(path[b])
            run.stats.emitted += len(drawn[b])


def _carriers(path: list[int], drafts: list[list[int]]) -> list[int]:
    """For each accepted depth, a draft (copy index) whose prefix is the accepted path."""
    out = []
    for t in range(len(path)):
        out.append(next(j for j, d in enumerate(drafts) if d[:t + 1] == path[:t + 1]))
    return out


def _walk(rounds: Any, root_p: torch.Tensor, out: torch.Tensor, offsets: list[int], drafts: list[list[int]],
          logq: torch.Tensor | None, trees: list, active: list[bool], n: int) -> tuple[list[list[int]], list[list[int]]]:
    """K-SEQ down each row's tree; commits the tokens like plain decoding. Returns each row's accepted
    tokens and every token it drew."""
    fill, chain, device = rounds.fill, rounds.chain, rounds.device
    batch = len(active)
    going = list(active)
    path: list[list[int]] = [[] for _ in range(batch)]
    drawn: list[list[int]] = [[] for _ in range(batch)]
    committed: list[list[int]] = [[] for _ in range(batch)]
    where = f"hole '{rounds.hole.name}' ({rounds.hole.where})"
    for depth in range(max((len(d) for d in drafts), default=0) + 1):
        if not any(going):
            break
        alive = [[j for j in range(n) if going[b] and drafts[b * n + j][:depth] == path[b]
                  and len(drafts[b * n + j]) > depth] for b in range(batch)]
        raw = torch.stack([_node_p(root_p, out, offsets, trees, b, n, path[b], drafts) for b in range(batch)])
        mask = rounds._masks(list(fill.states) if fill.states is not None else None)
        empty = (~mask.any(-1)).tolist()
        for b in range(batch):
            if going[b] and empty[b]:
                fill._dead_end(b)
        mask = mask | ~torch.tensor(going, device=device)[:, None]
        lp = chain.logprobs(raw, rounds.chain_state, mask=mask, context=where)
        token, keep = _choose(lp, logq, drafts, alive, depth, n, chain.is_greedy, rounds.run_.generator)
        chosen = lp.gather(1, token[:, None])[:, 0].tolist()
        tokens = token.tolist()
        if rounds.chain_state is not None:
            rounds.chain_state.advance([t if g else -1 for t, g in zip(tokens, going)])
        for b in range(batch):
            if not going[b]:
                continue
            before = len(drawn[b])
            rounds._emit(b, [tokens[b]], [chosen[b]], committed[b], drawn[b])
            if fill.active[b] and keep[b] and len(drawn[b]) > before:
                path[b].append(tokens[b])
            else:
                going[b] = False
    rounds.unfed = [c[len(p):] for c, p in zip(committed, path)]
    return path, drawn


def _node_p(root_p, out, offsets, trees, b, n, prefix, drafts) -> torch.Tensor:
    """The target's raw log-probs after row ``b``'s accepted prefix (a node of its tree)."""
    if not prefix:
        return root_p[b]
    carrier = next(j for j in range(n) if drafts[b * n + j][:len(prefix)] == prefix)
    return out[b, offsets[b] + trees[b][2][carrier][len(prefix) - 1]]


def _choose(lp, logq, drafts, alive, depth, n, greedy, generator) -> tuple[torch.Tensor, list[bool]]:
    """The token each row emits at ``depth`` and whether it is a draft token (the walk goes on)."""
    batch, vocab = lp.shape
    if greedy or logq is None:
        token = lp.argmax(-1) if greedy else gumbel_argmax(lp, generator)
        carried = [any(drafts[b * n + j][depth] == t for j in alive[b]) for b, t in enumerate(token.tolist())]
        return token, carried
    counts = torch.tensor([len(a) for a in alive], device=lp.device)
    candidates = torch.zeros((batch, n), dtype=torch.long, device=lp.device)
    q = torch.ones((batch, vocab), dtype=lp.dtype, device=lp.device) / vocab
    for b, js in enumerate(alive):
        if js:
            candidates[b, :len(js)] = torch.tensor([drafts[b * n + j][depth] for j in js], device=lp.device)
            q[b] = logq[b * n + js[0], depth].exp()
    chosen, token = verify_kseq(lp.exp(), q, candidates, counts, generator)
    bonus = gumbel_argmax(lp, generator)
    token = torch.where(counts > 0, token, bonus)
    return token, [c >= 0 and k > 0 for c, k in zip(chosen.tolist(), counts.tolist())]
