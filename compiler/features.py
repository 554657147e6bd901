"""What the runtime can execute: the one list the checker consults.

The language accepts every construct of the design; the runtime grows into it. A construct whose
feature is missing from :class:`SupportedFeatures` is rejected by the checker with an error that
names it ("`beam` search is not supported yet"), never ignored. When a runtime feature lands,
add its key to :data:`RUNTIME` (or pass a wider ``SupportedFeatures`` to ``check``).

>>> RUNTIME.allows("beam"), LANGUAGE.allows("beam"), SupportedFeatures().allows("beam")
(True, True, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Feature key -> how an error names the construct ("<name> is not supported yet").
FEATURES: dict[str, str] = {
    # target statements and values
    "let": "`let`",
    "if": "`if`/`else`",
    "for": "`for` loops",
    "call": "program calls",
    "factor": "`factor`",
    "condition": "`condition`",
    "expressions": "computed expressions (anything but a name or a literal)",
    "raw chat text": "text or holes outside a role block on a chat model",
    # parameters
    "list parameters": "list-typed parameters",
    "schema parameters": "schema-typed parameters",
    # constraints (regular ones: regex, choice, literals, int/float/bool, & and |, are `constraints`)
    "json": "JSON Schema constraints (`json`)",
    "lark": "grammar constraints (Lark grammars)",
    "where": "`where` predicates on holes",
    "constraint and stop": "a constraint together with `stop` on one hole",
    "keep stop": "`keep stop`",
    "extern": "extern predicates and potentials",
    # models
    "bytes": "byte-level models (`bytes`)",
    "ensemble": "model ensembles (`ensemble`)",
    # inference
    "awrs": "`awrs` inference",
    "smc": "`smc` inference",
    "rejection": "`rejection` inference",
    "enumerate": "`enumerate`",
    "speculate": "speculative decoding (`speculate`)",
    "speculate draft": "`speculate draft`",
    "speculate ngram": "`speculate ngram`",
    "speculate self": "`speculate self`",
    "speculate recycle": "`speculate recycle`",
    "speculate recycle dynamic": "`speculate recycle tree dynamic`",
    "speculate spectr": "`speculate spectr`",
    "speculate rsd": "`speculate rsd`",
    "speculate with others": "`speculate` with `smc`, `awrs`, `rejection`, a search or a byte-level model",
    "beam": "`beam` search",
    "best_of": "`best_of` selection",
    "cautious": "`cautious` decoding",
    "lookahead_tree": "`lookahead_tree` decoding",
    "heal": "token healing (`heal`)",
    "boundary": "byte-level boundaries (`boundary bytes`)",
    "for hole": "per-hole inference (`for HOLE:`)",
    "for hole speculate": "`speculate` for one hole (inside `for HOLE:`)",
}


@dataclass(frozen=True)
class SupportedFeatures:
    """The constructs the runtime executes.

    ``samplers``: sampler names allowed in chains. ``constraints``: regular constraints on holes
    (regex, choice, literal, ``int``/``float``/``bool``, ``&``, ``|`` and declared regexes).
    ``features``: keys of :data:`FEATURES`.
    """

    samplers: frozenset[str] = frozenset({"temperature"})
    constraints: bool = False
    features: frozenset[str] = field(default_factory=frozenset)

    def allows(self, feature: str) -> bool:
        if feature not in FEATURES:
            raise KeyError(f"unknown feature {feature!r}")
        return feature in self.features

    @staticmethod
    def describe(feature: str) -> str:
        return FEATURES[feature]

    @classmethod
    def everything(cls) -> SupportedFeatures:
        """The whole language (what the checker accepts when the runtime is not consulted)."""
        return cls(samplers=frozenset(_all_samplers()), constraints=True, features=frozenset(FEATURES))


def _all_samplers() -> tuple[str, ...]:
    from genweave.runtime.samplers.registry import SAMPLERS

    return tuple(SAMPLERS)


# What the runtime runs today: text, role blocks, holes with regular constraints, `stop` and
# `max N tokens`, `return` of a name or literal, `greedy`, `sample` with any sampler chain, `draws`,
# `seed`.
RUNTIME = SupportedFeatures(samplers=frozenset(_all_samplers()), constraints=True, features=frozenset({
    "let", "if", "for", "call", "factor", "condition", "expressions", "keep stop", "extern", "where",
    "rejection", "list parameters", "json", "schema parameters", "heal", "for hole", "lark", "smc", "awrs",
    "beam", "best_of", "cautious", "lookahead_tree", "enumerate", "raw chat text",
    "bytes", "ensemble", "boundary", "constraint and stop",
    "speculate", "speculate draft", "speculate ngram", "speculate self", "speculate recycle", "speculate spectr",
    "speculate rsd", "speculate recycle dynamic", "for hole speculate",
}))

# The language level: every construct.
LANGUAGE = SupportedFeatures.everything()
