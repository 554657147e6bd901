"""Alphabet compression: huge character classes without huge interegular alphabets.

interegular lists every character of a class explicitly, so ``[\\u0100-\\U0010ffff]`` makes an
alphabet of a million symbols and ``to_fsm`` takes tens of seconds. Characters that belong to
exactly the same classes of a pattern are interchangeable, so the code points split into
*atoms* (maximal intervals with one membership pattern). :func:`compress_alphabet` rewrites every
class to hold one representative per atom (the atom's first character) and returns the atoms;
the UTF-8 expansion (:func:`genweave.runtime.constraints.utf8.char_fsm_to_bytes`) maps each
representative back to its whole interval. ASCII characters are always their own atoms (``.``
names ``\\n`` explicitly). Case-insensitive patterns are left alone, because interegular folds
case per character and a representative does not fold like its atom.

This walks interegular's parsed pattern tree (``interegular.patterns``, stable across 0.3.x).

>>> import interegular
>>> tree, atoms = compress_alphabet(interegular.parse_pattern("[\\u0100-\\U0010ffff]é"))
>>> sorted((hex(lo), hex(hi)) for lo, hi in atoms.values())
[('0x100', '0x10ffff'), ('0xe9', '0xe9')]
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from interegular import patterns
from interegular.patterns import REFlags

COMPRESS_ABOVE = 4096  # explicit characters, all classes together, beyond which atoms pay off


def compress_alphabet(tree: patterns.Pattern) -> tuple[patterns.Pattern, dict[str, tuple[int, int]]]:
    """(the tree with one representative per atom in each class, representative -> (lo, hi));
    the tree itself and no atoms when it is small or case-insensitive."""
    groups = {id(g): g for g in _char_groups(tree) if g.chars}
    if sum(len(g.chars) for g in groups.values()) <= COMPRESS_ABOVE or _folds_case(tree):
        return tree, {}
    members = {key: np.sort(np.fromiter(map(ord, g.chars), np.int64, len(g.chars)))
               for key, g in groups.items()}
    cuts = [np.arange(0x81)]
    for points in members.values():
        breaks = np.flatnonzero(np.diff(points) != 1)
        cuts += [points[np.r_[0, breaks + 1]], points[np.r_[breaks, len(points) - 1]] + 1]
    cuts = np.unique(np.concatenate(cuts))
    lows, highs = cuts[:-1], cuts[1:] - 1
    chars: dict[int, frozenset[str]] = {}
    atoms: dict[str, tuple[int, int]] = {}
    for key, points in members.items():
        inside = np.flatnonzero(np.isin(lows, points))  # an atom lies wholly in or out of a class
        chars[key] = frozenset(chr(lows[i]) for i in inside.tolist())
        atoms.update((chr(lows[i]), (int(lows[i]), int(highs[i]))) for i in inside.tolist())
    return _rebuild(tree, chars), atoms


def _children(node) -> tuple:
    if isinstance(node, patterns.Pattern):
        return node.options
    if isinstance(node, patterns._Concatenation):
        return node.parts
    if isinstance(node, patterns._Repeated):
        return (node.base,)
    if isinstance(node, patterns._NonCapturing):
        return (node.inner,)
    return ()


def _char_groups(node):
    if isinstance(node, patterns._CharGroup):
        yield node
    for child in _children(node):
        yield from _char_groups(child)


def _folds_case(node) -> bool:
    if isinstance(node, patterns.Pattern) and node.added_flags & REFlags.CASE_INSENSITIVE:
        return True
    return any(_folds_case(child) for child in _children(node))


def _rebuild(node, chars: dict[int, frozenset[str]]):
    """A copy of the tree whose character classes hold ``chars[id(class)]``."""
    if isinstance(node, patterns._CharGroup):
        return replace(node, chars=chars[id(node)]) if id(node) in chars else node
    if isinstance(node, patterns.Pattern):
        return replace(node, options=tuple(_rebuild(o, chars) for o in node.options))
    if isinstance(node, patterns._Concatenation):
        return replace(node, parts=tuple(_rebuild(p, chars) for p in node.parts))
    if isinstance(node, patterns._Repeated):
        return replace(node, base=_rebuild(node.base, chars))
    if isinstance(node, patterns._NonCapturing):
        return replace(node, inner=_rebuild(node.inner, chars))
    return node
