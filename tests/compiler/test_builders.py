"""The Python builders and the ``.gen`` source of the same program lower to equal IR (before and
after the passes), and the builders' printed source reads back as the same syntax tree."""

import pytest

import genweave
from genweave import builders as gw
from genweave.compiler.check import check
from genweave.compiler.features import LANGUAGE
from genweave.compiler.lower import lower
from genweave.compiler.pipeline import optimize
from genweave.dsl.errors import GenArgumentError
from genweave.dsl.parser import parse
from genweave.testing import ToyLM


def haiku():
    p = gw.Program("haiku", {"topic": str}, returns=str)
    p.text("A haiku about {topic}:\n")
    p.poem = gw.gen(gw.regex(r"([^\n]{5,40}\n){3}"))
    p.ret(gw.var("poem"))
    p.infer(gw.sample(gw.temperature(0.7) | gw.min_p(0.05)), gw.speculate("recycle", k=8), gw.draws(4))
    return [p]


HAIKU = '''
program haiku(topic: str) -> str:
  target:
    "A haiku about {topic}:\\n"
    poem = gen regex r"([^\\n]{5,40}\\n){3}"
    return poem
  infer:
    sample temperature 0.7 | min_p 0.05
    speculate recycle k 8
    draws 4
'''


def chat():
    p = gw.Program("hello", {"topic": str}, returns=str)
    p.say("system", "You are concise.")
    p.say("user", "Write about {topic}.")
    with p.role("assistant"):
        story = p.gen("story", max_tokens=60)
    p.ret(story)
    p.infer(gw.sample(gw.temperature(0.7)), gw.draws(2))
    return [gw.model("lm", "smollm2-135m", chat=True), p]


CHAT = '''
model lm = "smollm2-135m" chat
program hello(topic: str) -> str:
  target:
    system: "You are concise."
    user: "Write about {topic}."
    assistant:
        story = gen max 60 tokens
    return story
  infer:
    sample temperature 0.7
    draws 2
'''


def typed_holes():
    p = gw.Program("form", returns=int)
    p.text("Answer: ")
    p.gen("ok", gw.choice(["yes", "no"]))
    p.text("\nCount: ")
    n = p.gen("n", gw.INT, max_tokens=4)
    p.text("\nNote: ")
    p.gen("note", stop="\n", keep_stop=True, max_tokens=20)
    p.text("{ok}")
    p.ret(n)
    return [p]


TYPED = '''
program form() -> int:
    "Answer: "
    ok = gen choice ["yes", "no"]
    "\\nCount: "
    n = gen int max 4 tokens
    "\\nNote: "
    note = gen stop "\\n" keep stop max 20 tokens
    "{ok}"
    return n
'''


def control_flow():
    p = gw.Program("lists", {"n": int, "topic": str}, returns=str)
    k = p.let("k", p["n"] * 2 - 1)
    with p.if_(k > 3):
        p.gen("x", gw.regex("[a-z]+"), max_tokens=5)
    with p.else_():
        p.gen("x", gw.literal("none"))
    with p.for_("i", gw.range_(p["n"])):
        p.text("Item {i + 1} about {topic}: ")
        p.gen("item", stop="\n")
        p.factor(gw.len_(gw.var("item")) * -0.1)
    p.ret(gw.var("x") + "!")
    p.infer(gw.smc(4))
    return [p]


CONTROL = '''
program lists(n: int, topic: str) -> str:
  target:
    let k = n * 2 - 1
    if k > 3:
        x = gen regex "[a-z]+" max 5 tokens
    else:
        x = gen "none"
    for i in range(n):
        "Item {i + 1} about {topic}: "
        item = gen stop "\\n"
        factor len(item) * -0.1
    return x + "!"
  infer:
    smc particles 4
'''


def calls():
    intro = gw.Program("intro", {"topic": str}, returns=str)
    intro.text("About {topic}: ")
    intro.ret(intro.gen("line", max_tokens=10))
    main = gw.Program("main", {"topic": str}, returns=str)
    head = main.let("head", main.call(intro, main["topic"]))
    main.do(main.call("intro", topic="again"))
    main.text("\n")
    body = main.gen("body", max_tokens=20)
    main.ret(head + body)
    return [intro, main]


CALLS = '''
program intro(topic: str) -> str:
    "About {topic}: "
    line = gen max 10 tokens
    return line

program main(topic: str) -> str:
    let head = intro(topic)
    intro(topic="again")
    "\\n"
    body = gen max 20 tokens
    return head + body
'''


PERSON = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}


def schemas():
    p = gw.Program("extract", {"doc": str}, returns="Person")
    p.text("{doc}\nJSON: ")
    person = p.gen("person", gw.named("Person"), max_tokens=200)
    p.gen("extra", gw.json_schema({"type": "integer"}))
    p.ret(person)
    return [gw.declare("Person", gw.json_schema(PERSON)), p]


SCHEMAS = '''
schema Person = json """{"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}"""
program extract(doc: str) -> Person:
    "{doc}\\nJSON: "
    person = gen Person max 200 tokens
    extra = gen json """{"type": "integer"}"""
    return person
'''


def predicates():
    short = gw.predicate("short", "preds:all_words_at_most_5", prefix=True)
    fluent = gw.potential("fluent", "preds:fluent", prefix=True)
    p = gw.Program("terse", {"topic": str}, returns=str)
    p.text("News about {topic}:\n")
    text = p.gen("text", gw.regex(r"[^\n]{1,200}\.").where(short(gw.var("text"))))
    p.factor(-0.1 * gw.len_(text))
    p.ret(text)
    p.infer(gw.smc(8, ess=0.5, resample="systematic", propose=gw.awrs(), twists=[gw.twist(fluent, every=4)]))
    return [short, fluent, p]


PREDICATES = '''
predicate short = extern "preds:all_words_at_most_5" prefix
potential fluent = extern "preds:fluent" prefix
program terse(topic: str) -> str:
  target:
    "News about {topic}:\\n"
    text = gen regex r"[^\\n]{1,200}\\." where short(text)
    factor -0.1 * len(text)
    return text
  infer:
    smc particles 8 ess 0.5 resample systematic:
        propose awrs
        twist fluent every 4 tokens
'''


def selection():
    p = gw.Program("pick", returns=str)
    p.text("Say something short: ")
    a = p.gen("a", gw.regex("[a-z ]+") & gw.regex(".{1,20}"), max_tokens=8)
    p.condition(gw.len_(a) > 3)
    p.ret(a)
    p.infer(gw.rejection(50), gw.seed(7))
    q = gw.Program("best", returns=str)
    q.text("Say: ")
    b = q.gen("b", max_tokens=5)
    q.ret(b)
    q.infer(gw.best_of(4, by="len(b)"))
    return [p, q]


SELECTION = '''
program pick() -> str:
  target:
    "Say something short: "
    a = gen regex "[a-z ]+" & regex ".{1,20}" max 8 tokens
    condition len(a) > 3
    return a
  infer:
    rejection max 50
    seed 7

program best() -> str:
  target:
    "Say: "
    b = gen max 5 tokens
    return b
  infer:
    best_of 4 by len(b)
'''


def acceleration():
    p = gw.Program("fast", returns=str)
    p.text("Go: ")
    x = p.gen("x", max_tokens=30)
    p.text(" and ")
    p.gen("y", max_tokens=5)
    p.ret(x)
    p.infer(gw.greedy(), gw.speculate("draft", model="small", k=4), gw.heal(), gw.seed(3),
            gw.for_hole("y", gw.sample(gw.temperature(0.9) | gw.top_k(40)), gw.awrs()))
    return [gw.model("lm", "smollm2-135m"), gw.model("small", "tiny"), p]


ACCELERATION = '''
model lm = "smollm2-135m"
model small = "tiny"
program fast() -> str:
  target:
    "Go: "
    x = gen max 30 tokens
    " and "
    y = gen max 5 tokens
    return x
  infer:
    greedy
    speculate draft small k 4
    heal
    seed 3
    for y:
        sample temperature 0.9 | top_k 40
        awrs
'''


GRAMMAR = 'start: NUMBER ("+" NUMBER)*\n%import common.NUMBER\n'


def grammars():
    p = gw.Program("sums", returns=str)
    p.text("Sum: ")
    p.gen("expr", gw.grammar(GRAMMAR) | gw.literal("0"), max_tokens=12)
    p.text(" = ")
    c = p.gen("c", gw.choice(["small", "large"]))
    p.ret(c)
    p.infer(gw.sample(), gw.enumerate_hole("c"))
    return [p]


GRAMMARS = '''
program sums() -> str:
  target:
    "Sum: "
    expr = gen lark """start: NUMBER ("+" NUMBER)*
%import common.NUMBER
""" | "0" max 12 tokens
    " = "
    c = gen choice ["small", "large"]
    return c
  infer:
    sample
    enumerate c
'''


def stdlib():
    p = gw.Program("contact", returns=str)
    p.text("Email: ")
    e = p.gen("email", gw.named("patterns.email"), max_tokens=30)
    p.text("\nDate: ")
    p.gen("date", gw.named("iso_date"))
    p.ret(e)
    return [gw.use("std.patterns"), gw.use("std.patterns", "iso_date"), p]


STDLIB = '''
use std.patterns
use std.patterns (iso_date)
program contact() -> str:
    "Email: "
    email = gen patterns.email max 30 tokens
    "\\nDate: "
    date = gen iso_date
    return email
'''


def samplers():
    p = gw.Program("creative", returns=str)
    p.text("Once upon a time")
    s = p.gen("story", max_tokens=40)
    p.ret(s)
    p.infer(gw.sample(gw.temperature(1.2) | gw.top_p(0.9) | gw.repetition_penalty(1.1, window=64)), gw.draws(2))
    return [gw.declare("warm", gw.temperature(1.2) | gw.top_p(0.9)), p]


SAMPLERS = '''
sampler warm = temperature 1.2 | top_p 0.9
program creative() -> str:
  target:
    "Once upon a time"
    story = gen max 40 tokens
    return story
  infer:
    sample warm | repetition_penalty 1.1 window 64
    draws 2
'''

PAIRS = [(haiku, HAIKU), (chat, CHAT), (typed_holes, TYPED), (control_flow, CONTROL), (calls, CALLS),
         (schemas, SCHEMAS), (predicates, PREDICATES), (selection, SELECTION), (acceleration, ACCELERATION),
         (grammars, GRAMMARS), (stdlib, STDLIB), (samplers, SAMPLERS)]


@pytest.mark.parametrize(("build", "source"), PAIRS, ids=[b.__name__ for b, _ in PAIRS])
def test_builder_and_source_lower_to_equal_ir(build, source):
    built = gw.module(*build())
    written = parse(source)
    check(built, supported=LANGUAGE)
    check(written, supported=LANGUAGE)
    from_builders, from_source = lower(built), lower(written)
    assert from_builders == from_source
    assert {n: optimize(p) for n, p in from_builders.items()} == {n: optimize(p) for n, p in from_source.items()}
    assert parse(gw.to_source(*build())) == built


def test_compiled_builder_module_runs():
    toy = ToyLM([bytes([c]) for c in range(32, 127)] + [b"\n", b"12"], seed=2)
    module = gw.compile_module(*typed_holes())
    results = module.form(model=toy, draws=5, seed=1)
    assert all(isinstance(r.value, int) for r in results)
    assert isinstance(module, genweave.Module)


def test_builder_misuse_is_a_genweave_error():
    p = gw.Program("p")
    with pytest.raises(GenArgumentError, match="else_"):
        with p.else_():
            pass
    with pytest.raises(GenArgumentError, match="truth value"):
        bool(gw.var("x") > 1)
    with pytest.raises(GenArgumentError, match="unknown parameter type"):
        gw.Program("q", {"x": dict})
    with pytest.raises(GenArgumentError, match="cannot use"):
        gw.value({"a": 1})
