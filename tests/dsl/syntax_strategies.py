"""Hypothesis strategies for ``.gen`` syntax trees: every tree drawn is one the parser can produce."""

from hypothesis import strategies as st

from genweave.dsl import ast

KEYWORDS = frozenset("""
use model chat bytes ensemble weights regex grammar lark file schema json sampler predicate potential
extern prefix program target infer system user assistant gen stop keep max tokens let if elif else for in
factor condition return where choice or and not true false greedy sample awrs smc propose twist every
rejection enumerate speculate beam best_of by cautious lookahead_tree heal boundary draws seed
""".split())

names = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True).filter(lambda n: n not in KEYWORDS)
dotted = st.lists(names, min_size=1, max_size=2).map(".".join)
numbers = st.one_of(st.integers(0, 10**6), st.floats(0, 1e6, allow_nan=False, allow_infinity=False))
signed = st.one_of(numbers, numbers.map(lambda x: -x))

# Text of a plain string: the formatter escapes quotes, backslashes, braces and control characters.
_TEXT = st.text(st.sampled_from(list("ab z09.,:-_") + ["\n", "\t", '"', "\\", "{", "}", "é", "→"]), min_size=1,
                max_size=8)
_RAW = st.text(st.sampled_from(list("ab z09.,:-_[]()*+?|{}^$é")), max_size=8)


def _merge(parts):
    merged = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return tuple(merged)


def plain_strings(interpolations=None, *, constant=False):
    part = _TEXT if constant or interpolations is None else st.one_of(_TEXT, interpolations.map(ast.Interpolation))
    return st.builds(lambda parts, triple: ast.String(_merge(parts), triple=triple),
                     st.lists(part, max_size=3), st.booleans())


def raw_strings():
    return st.builds(lambda text, triple: ast.String((text,) if text else (), raw=True, triple=triple),
                     _RAW, st.booleans())


verbatim = st.builds(lambda text, raw, triple: ast.String((text,) if text else (), raw=raw, triple=triple),
                     _RAW, st.booleans(), st.booleans())
constant_strings = st.one_of(plain_strings(constant=True), raw_strings())


def _expressions():
    leaves = st.one_of(names.map(ast.Name), numbers.map(ast.Number), st.booleans().map(ast.Bool))

    def extend(inner):
        return st.one_of(
            st.lists(inner, max_size=3).map(lambda items: ast.ListExpr(tuple(items))),
            st.builds(ast.Attribute, inner, names),
            st.builds(ast.Index, inner, inner),
            st.builds(lambda f, args, kw: ast.Call(f, tuple(args), tuple(dict(kw).items())),
                      inner, st.lists(inner, max_size=2), st.lists(st.tuples(names, inner), max_size=2)),
            st.builds(ast.Unary, st.sampled_from(["-", "not"]), inner),
            st.builds(ast.Binary, st.sampled_from(sorted(ast.BINARY_OPS)), inner, inner),
        )

    plain = st.recursive(leaves, extend, max_leaves=8)
    return st.one_of(plain, plain_strings(plain, constant=False))


expressions = _expressions()
# Inside `{...}` of a non-triple string no quote may appear: interpolate string-free expressions.
interpolated_strings = plain_strings(st.recursive(
    st.one_of(names.map(ast.Name), numbers.map(ast.Number)),
    lambda inner: st.builds(ast.Binary, st.sampled_from(["+", "*", "and", "=="]), inner, inner), max_leaves=4))


def _constraints():
    leaves = st.one_of(
        st.builds(ast.RegexC, verbatim), st.builds(ast.LarkC, verbatim),
        st.builds(ast.JsonC, st.one_of(verbatim, dotted.map(ast.NamedC))),
        st.lists(constant_strings, max_size=3).map(lambda o: ast.ChoiceC(tuple(o))),
        st.builds(ast.LiteralC, constant_strings), dotted.map(ast.NamedC))

    def extend(inner):
        return st.one_of(st.builds(ast.BinaryC, st.sampled_from(["&", "|"]), inner, inner),
                         st.builds(ast.WhereC, inner, expressions))

    return st.recursive(leaves, extend, max_leaves=4)


constraints = _constraints()


def _statements():
    simple = st.one_of(
        st.builds(ast.TextStmt, interpolated_strings),
        st.builds(ast.GenStmt, names, st.none() | constraints, st.none() | constant_strings,
                  st.none() | st.integers(0, 500), st.booleans()),
        st.builds(ast.LetStmt, names, expressions),
        st.builds(lambda f, args: ast.CallStmt(ast.Call(f, tuple(args))), dotted.map(_dotted_expr),
                  st.lists(expressions, max_size=2)),
        st.builds(ast.FactorStmt, expressions), st.builds(ast.ConditionStmt, expressions),
        st.builds(ast.ReturnStmt, expressions),
        st.builds(lambda role, text: ast.RoleBlock(role, (ast.TextStmt(text),), inline=True),
                  st.sampled_from(["system", "user", "assistant"]), interpolated_strings),
    )

    def extend(inner):
        block = st.lists(inner, min_size=1, max_size=3).map(tuple)
        return st.one_of(
            st.builds(ast.RoleBlock, st.sampled_from(["system", "user", "assistant"]), block),
            st.builds(ast.IfStmt, expressions, block, st.just(()) | block),
            st.builds(ast.ForStmt, names, expressions, block))

    return st.recursive(simple, extend, max_leaves=6)


def _dotted_expr(name: str) -> ast.Expr:
    head, *rest = name.split(".")
    node: ast.Expr = ast.Name(head)
    for part in rest:
        node = ast.Attribute(node, part)
    return node


statements = _statements()

option_values = st.one_of(signed.map(ast.Number), names.map(ast.Name), constant_strings)
options = st.lists(st.tuples(names, option_values), max_size=2, unique_by=lambda kv: kv[0]).map(tuple)
stages = st.builds(ast.Stage, dotted, st.none() | option_values, options)
chains = st.lists(stages, min_size=1, max_size=3).map(lambda s: ast.Chain(tuple(s)))


def _infer_statements():
    smc_items = st.one_of(st.just(ast.Propose("awrs")), st.builds(ast.Propose, st.just("sample"), st.none() | chains),
                          st.builds(ast.Twist, dotted, st.none() | st.integers(0, 64)))
    simple = st.one_of(
        st.just(ast.Greedy()), st.builds(ast.Sample, st.none() | chains), st.just(ast.Awrs()),
        st.builds(ast.Smc, st.none() | option_values, options, st.lists(smc_items, max_size=3).map(tuple)),
        st.builds(ast.Method, st.sampled_from(["rejection", "beam", "cautious", "lookahead_tree"]),
                  st.none() | option_values, options),
        st.builds(ast.BestOf, st.none() | option_values, options, expressions),
        st.builds(ast.Speculate, names, st.none() | option_values, options),
        st.builds(ast.Enumerate, names), st.just(ast.Heal()), st.builds(ast.Boundary, names),
        st.builds(ast.Draws, st.integers(0, 100)), st.builds(ast.Seed, st.integers(0, 2**31)))
    return st.recursive(simple, lambda inner: st.builds(
        ast.ForHole, names, st.lists(inner, min_size=1, max_size=2).map(tuple)), max_leaves=4)


infer_statements = _infer_statements()
types = st.recursive(dotted.map(ast.TypeRef), lambda inner: st.builds(
    lambda name, arg: ast.TypeRef(name, (arg,)), dotted, inner), max_leaves=2)


@st.composite
def programs(draw):
    target = tuple(draw(st.lists(statements, min_size=1, max_size=4)))
    infer = tuple(draw(st.lists(infer_statements, max_size=3)))
    short = not infer and draw(st.booleans())
    params = tuple(draw(st.lists(st.builds(ast.Param, names, types), max_size=3)))
    return ast.ProgramDecl(draw(names), params, draw(st.none() | types), target, infer, short_form=short)


ensembles = st.builds(lambda models, weights: ast.Ensemble(tuple(models), tuple(weights)),
                      st.lists(dotted, min_size=2, max_size=3), st.lists(signed.map(ast.Number), max_size=2))
declarations = st.one_of(
    st.builds(ast.UseDecl, st.one_of(dotted, plain_strings(constant=True)), st.lists(names, max_size=2).map(tuple)),
    st.builds(ast.ModelDecl, names, st.one_of(plain_strings(constant=True), ensembles), st.booleans(), st.booleans()),
    st.builds(ast.RegexDecl, names, verbatim),
    st.one_of(st.builds(ast.GrammarDecl, names, verbatim, st.just(False)),
              st.builds(ast.GrammarDecl, names, constant_strings, st.just(True))),
    st.one_of(st.builds(ast.SchemaDecl, names, verbatim, st.just(False)),
              st.builds(ast.SchemaDecl, names, constant_strings, st.just(True))),
    st.builds(ast.SamplerDecl, names, chains),
    st.builds(ast.ExternDecl, st.sampled_from(["predicate", "potential"]), names, constant_strings, st.booleans()),
    programs(),
)
modules = st.lists(declarations, max_size=4).map(lambda d: ast.Module(tuple(d)))
