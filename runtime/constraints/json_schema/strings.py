"""JSON strings: languages of *decoded* texts (length, pattern, format, enum), then encoded.

A string schema is compiled in two steps. First, the decoded values it allows form a byte DFA
over UTF-8 text: the intersection of a length automaton (code points counted), the patterns
(ECMA-262 ``pattern`` is a *search*: unanchored unless ``^``/``$``), a format, an enum. Then
:func:`encode_json_string` turns it into the language of JSON string literals whose decoded
value is in that set: raw characters except ``"``, ``\\`` and control characters, the escapes
``\\" \\\\ \\/ \\b \\f \\n \\r \\t``, and ``\\u00XX`` for control characters. ``\\uXXXX`` escapes of
other characters are not produced (every character can be written raw, and surrogate pairs would
make lengths ambiguous), so this is exact for every text ``json.dumps(value,
ensure_ascii=False)`` writes.

>>> body = encode_json_string(decoded_length(1, 3))
>>> [body.accepts(s.encode()) for s in ('"é\\\\n"', '""', '"abcd"', '"a\\\\u0001"')]
[True, False, False, True]
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from genweave.dsl.errors import GenCheckError
from genweave.runtime.constraints.byte_dfa import DEAD, ByteDFA, literal_dfa
from genweave.runtime.constraints.json_schema.automata import (
    difference,
    intersection,
    minimize,
    repeat_dfa,
    trim,
)
from genweave.runtime.constraints.regex import regex_dfa
from genweave.runtime.constraints.regex_anchors import regex_pieces

_M4 = r"(?:[02468][48]|[2468]0|[13579][26])"  # two-digit multiples of 4 but 00
_YEAR = r"(?:[0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)"  # 0001-9999
_DATE = (
    rf"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    rf"|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{{2}}{_M4}|{_M4}00)-02-29)"
)
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H16 = r"[0-9A-Fa-f]{1,4}"
_LS32 = rf"(?:{_H16}:{_H16}|{_IPV4})"
_IPV6 = "|".join([
    rf"(?:{_H16}:){{6}}{_LS32}", rf"::(?:{_H16}:){{5}}{_LS32}", rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
    rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}", rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
    rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}", rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
])
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_SEGMENT_NZ = rf"{_PCHAR}+"
_AUTHORITY = (rf"(?:(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*@)?(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*"
              r"(?::[0-9]*)?")
_URI = (
    rf"[A-Za-z][A-Za-z0-9+.\-]*:(?://{_AUTHORITY}(?:/{_PCHAR}*)*|/(?:{_SEGMENT_NZ}(?:/{_PCHAR}*)*)?"
    rf"|{_SEGMENT_NZ}(?:/{_PCHAR}*)*|)(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"
)
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_RELATIVE_REF = (  # RFC 3986 relative-ref: network-path, absolute path, path-noscheme or empty
    rf"(?://{_AUTHORITY}(?:/{_PCHAR}*)*|/(?:{_SEGMENT_NZ}(?:/{_PCHAR}*)*)?"
    rf"|(?:[{_UNRESERVED}{_SUB_DELIMS}@]|{_PCT})+(?:/{_PCHAR}*)*|)(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"
)
_JSON_POINTER = r"(?:/(?:[^~/]|~[01])*)*"  # RFC 6901
_DURATION_TIME = r"T(?:[0-9]+H(?:[0-9]+M(?:[0-9]+S)?)?|[0-9]+M(?:[0-9]+S)?|[0-9]+S)"
_DURATION = (  # RFC 3339 appendix A
    rf"P(?:(?:[0-9]+D|[0-9]+M(?:[0-9]+D)?|[0-9]+Y(?:[0-9]+M(?:[0-9]+D)?)?)(?:{_DURATION_TIME})?"
    rf"|{_DURATION_TIME}|[0-9]+W)"
)
_VARNAME = r"(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})+(?:\.(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})+)*"
_VARSPEC = rf"{_VARNAME}(?::[1-9][0-9]{{0,3}}|\*)?"
_URI_TEMPLATE = (  # RFC 6570 level 4: literals and expressions
    rf"(?:[!#$&()*+,\-./0-9:;=?@A-Z\[\]_a-z~]|%[0-9A-Fa-f]{{2}}"
    rf"|\{{[+#./;?&]?{_VARSPEC}(?:,{_VARSPEC})*\}})*"
)
# A subset of ECMA-262 regexes (that Python's re also compiles): literal characters, escaped
# metacharacters, class escapes, ``.``, simple classes, each optionally quantified; optional anchors.
_REGEX_ATOM = (r"(?:[A-Za-z0-9 _,:;=<>!@#%&~/'\-]|\\[.*+?^$(){}\[\]|\\/dDwWsS]|\."
               r"|\[\^?(?:a-z|A-Z|0-9|[A-Za-z0-9_]|\\[dws])+\])")
_SIMPLE_REGEX = rf"\^?(?:{_REGEX_ATOM}[*+?]?)*\$?"
MINIMIZE_BELOW = 2_000  # Moore refinement needs about one round per chain link: long counters skip it
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"

# Decoded-text regexes of the formats that are enforced (RFC 3339, RFC 5321 dot-atom subset,
# RFC 4122, RFC 3986, RFC 791/4291, RFC 1123). Each is a subset of what the format allows.
FORMATS = {
    "date": _DATE,
    "time": _TIME,
    "date-time": rf"{_DATE}[Tt]{_TIME}",
    "email": rf"{_ATEXT}+(?:\.{_ATEXT}+)*@{_LABEL}(?:\.{_LABEL})+",
    "uuid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    "uri": _URI,
    "ipv4": _IPV4,
    "ipv6": _IPV6,
    "hostname": rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*",
    "uri-reference": rf"{_URI}|{_RELATIVE_REF}",
    "iri": _URI,  # ASCII IRIs (URIs)
    "iri-reference": rf"{_URI}|{_RELATIVE_REF}",
    "idn-email": rf"{_ATEXT}+(?:\.{_ATEXT}+)*@{_LABEL}(?:\.{_LABEL})+",  # ASCII addresses
    "json-pointer": _JSON_POINTER,
    "relative-json-pointer": rf"(?:0|[1-9][0-9]*)(?:#|{_JSON_POINTER})",
    "duration": _DURATION,
    "uri-template": _URI_TEMPLATE,
    "regex": _SIMPLE_REGEX,
    "byte": r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?",  # OpenAPI: base64
}

# Format names some JSON Schema draft (or OpenAPI, for strings) defines. A format outside this
# set asserts nothing in any validator (the drafts say unknown formats are ignored): it is an
# annotation, listed on ``CompiledSchema.ignored``. A defined one not in FORMATS is refused.
DEFINED_FORMATS = frozenset(FORMATS) | {"idn-hostname"}

# (escape letter, decoded byte) of the short escapes.
_SHORT_ESCAPES = ((b'"', 0x22), (b"\\", 0x5C), (b"/", 0x2F), (b"b", 0x08), (b"f", 0x0C), (b"n", 0x0A),
                  (b"r", 0x0D), (b"t", 0x09))
_HEX = [(c, v) for v, c in enumerate(b"0123456789")] + [(c, 10 + i) for i, c in enumerate(b"abcdef")] + \
       [(c, 10 + i) for i, c in enumerate(b"ABCDEF")]


@lru_cache(maxsize=8)
def any_text() -> ByteDFA:
    """Every UTF-8 text (the empty one included)."""
    return regex_dfa(r"[\s\S]*")


@lru_cache(maxsize=8)
def one_character() -> ByteDFA:
    """One UTF-8 encoded code point."""
    return regex_dfa(r"[\s\S]")


@lru_cache(maxsize=256)
def decoded_length(low: int, high: int | None) -> ByteDFA:
    """Texts of ``low`` to ``high`` code points (``None``: no upper bound)."""
    return repeat_dfa(one_character(), low, high)


@lru_cache(maxsize=64)
def decoded_format(name: str) -> ByteDFA:
    return regex_dfa(FORMATS[name])


@lru_cache(maxsize=1024)
def decoded_pattern(pattern: str) -> ByteDFA:
    """Texts in which ECMA-262 ``pattern`` finds a match (``re.search``), as a byte DFA.

    Each top-level alternative is anchored where it starts with ``^`` or ends with ``$`` and
    padded with "any text" elsewhere; anchors elsewhere in the pattern are position tests
    (``$`` only at the end of the text, ``\\b`` an ASCII word boundary, as ECMA-262 says). Python's
    ``re`` parses the pattern (ECMA named groups ``(?<name>`` are rewritten); its classes are
    ASCII (``\\d`` is ``[0-9]``), as ECMA-262 says.

    >>> [decoded_pattern("^([^,]|$)").accepts(t) for t in (b"", b"a,", b",a")]
    [True, True, False]
    """
    pattern = re.sub(r"\(\?<(?![=!])", "(?P<", pattern)
    alternatives = split_alternatives(pattern)
    pieces = []
    for alternative in alternatives:
        start = alternative.startswith("^")
        body = alternative[1:] if start else alternative
        end = body.endswith("$") and not _escaped_at(body, len(body) - 1)
        body = body[:-1] if end else body
        pieces.append(("" if start else r"[\s\S]*") + f"(?:{body})" + ("" if end else r"[\s\S]*"))
    return regex_dfa("|".join(pieces), ecma=True)


def split_alternatives(pattern: str) -> list[str]:
    """The top-level ``|`` alternatives of a regex (outside groups and classes)."""
    parts, depth, start = [], 0, 0
    for i, piece, kind in regex_pieces(pattern):
        if kind != "char":
            continue
        if piece == "(":
            depth += 1
        elif piece == ")":
            depth -= 1
        elif piece == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
    parts.append(pattern[start:])
    return parts


def _escaped_at(text: str, index: int) -> bool:
    backslashes = len(text[:index]) - len(text[:index].rstrip("\\"))
    return backslashes % 2 == 1


def decoded_choices(values) -> ByteDFA:
    """Exactly the given texts."""
    return literal_dfa(value.encode("utf-8") for value in values)


def decoded_string(*, min_length: int = 0, max_length: int | None = None, patterns=(), formats=(),
                   choices=None, pointer: str = "") -> ByteDFA:
    """The intersection of the decoded-text constraints of one string schema."""
    parts: list[ByteDFA] = []
    if choices is not None:
        parts.append(decoded_choices(choices))
    if min_length > 0 or max_length is not None:
        parts.append(decoded_length(min_length, max_length))
    for pattern in patterns:
        try:
            parts.append(decoded_pattern(pattern))
        except GenCheckError as error:
            raise GenCheckError(f"{pointer or '/'}: pattern {pattern!r}: {error.message}", hint=error.hint) from None
    for name in formats:
        parts.append(decoded_format(name))
    if not parts:
        return any_text()
    parts.sort(key=lambda dfa: dfa.num_states)
    result = parts[0]
    for part in parts[1:]:
        result = intersection(result, part)
        if result.is_empty():
            return result
    return minimize(result) if result.num_states < MINIMIZE_BELOW else result


def encode_json_string(decoded: ByteDFA) -> ByteDFA:
    """The quoted JSON string literals whose decoded value is in ``decoded`` (module docstring)."""
    if decoded.is_empty():
        return decoded
    n = decoded.num_states
    d = decoded.transitions
    # Escapes start where an ASCII character may come next: the m "boundary" states b get six
    # escape states each: after "\\" (n+i), "\\u" (n+m+i), "\\u0", "\\u00", "\\u000", "\\u001"
    # (n+5m+i); then the opening state n+6m and the closed state n+6m+1.
    boundary = np.flatnonzero((d[:, :0x80] != DEAD).any(axis=1))
    m = len(boundary)
    esc = [n + k * m + np.arange(m) for k in range(6)]
    opening, closed = n + 6 * m, n + 6 * m + 1
    table = np.full((n + 6 * m + 2, 256), DEAD, dtype=np.int32)
    raw = np.ones(256, dtype=bool)
    raw[:0x20] = False
    raw[[0x22, 0x5C]] = False
    table[:n, raw] = d[:, raw]
    table[boundary, 0x5C] = esc[0]
    sub = d[boundary]
    for letter, byte in _SHORT_ESCAPES:
        table[esc[0], letter[0]] = sub[:, byte]
    table[esc[0], ord("u")] = esc[1]
    table[esc[1], ord("0")] = esc[2]
    table[esc[2], ord("0")] = esc[3]
    table[esc[3], ord("0")] = esc[4]
    table[esc[3], ord("1")] = esc[5]
    for char, value in _HEX:
        table[esc[4], char] = sub[:, value]
        table[esc[5], char] = sub[:, 16 + value]
    table[:n, 0x22] = np.where(decoded.accepting, closed, DEAD)
    table[opening, 0x22] = decoded.initial
    accepting = np.zeros(len(table), dtype=bool)
    accepting[closed] = True
    return trim(table, accepting, opening)  # not minimised: the schema DFA is, when small


@lru_cache(maxsize=1024)
def json_string(min_length: int = 0, max_length: int | None = None, patterns: tuple[str, ...] = (),
                formats: tuple[str, ...] = (), pointer: str = "") -> ByteDFA:
    """The encoded JSON strings of :func:`decoded_string` (memoised: schemas repeat them)."""
    return encode_json_string(decoded_string(min_length=min_length, max_length=max_length,
                                             patterns=patterns, formats=formats, pointer=pointer))


@lru_cache(maxsize=512)
def other_names(names: frozenset[str]) -> ByteDFA:
    """Decoded texts other than ``names`` (the names of additional members).

    For ASCII names this is the names' trie with every other byte leaving to "any text" (a
    trie node is always at a character boundary); otherwise a product automaton.
    """
    if not names:
        return any_text()
    if not all(name.isascii() for name in names):
        return difference(any_text(), decoded_choices(sorted(names)))
    free = any_text()
    trie = literal_dfa(name.encode() for name in names)  # minimal, so its states are few
    n = trie.num_states
    offset = n  # any_text's states follow the trie's
    table = np.empty((n + free.num_states, 256), dtype=np.int32)
    leave = free.transitions[free.initial]
    table[:n] = np.where(leave == DEAD, DEAD, leave + offset)[None, :]
    inside = trie.transitions != DEAD
    table[:n][inside] = trie.transitions[inside]
    table[n:] = np.where(free.transitions == DEAD, DEAD, free.transitions + offset)
    accepting = np.concatenate([~trie.accepting, free.accepting])
    return trim(table, accepting, trie.initial)


@lru_cache(maxsize=512)
def other_names_encoded(names: frozenset[str]) -> ByteDFA:
    """:func:`other_names` as JSON string literals (minimised: the escapes inside the names'
    trie mostly lead to the same "not a name" states)."""
    return minimize(encode_json_string(other_names(names)))


@lru_cache(maxsize=8)
def any_json_string() -> ByteDFA:
    """Every JSON string literal (in the encoding of :func:`encode_json_string`)."""
    return encode_json_string(any_text())
