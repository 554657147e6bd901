"""``&`` and ``|`` for constraints that compile themselves (grammars, grammar-routed JSON schemas):
each side stays as it is and the pair compiles to a :class:`~genweave.runtime.constraints.grammar.
combine.Combination` (mask AND / OR over the two step protocols)."""

from __future__ import annotations


class CombinableConstraint:
    """Mixin: ``a & b``, ``a | b`` (either side) as a ``Combination``."""

    __slots__ = ()

    def __and__(self, other):
        return _combination(self, other, "and")

    def __rand__(self, other):
        return _combination(other, self, "and")

    def __or__(self, other):
        return _combination(self, other, "or")

    def __ror__(self, other):
        return _combination(other, self, "or")


def _combination(left, right, how: str):
    from genweave.runtime.constraints.grammar.combine import Combination  # combine imports the builders

    return Combination(left, right, how)
