"""genweave: a declarative language, compiler and runtime for constrained and structured decoding.

>>> import genweave
>>> module = genweave.compile('program hi() -> str:\\n    "Hello"\\n    x = gen max 3 tokens\\n    return x\\n')
>>> module.program_names
('hi',)
"""

from genweave.api import Module, Program, compile
from genweave.constraints import ConstraintMatcher, choice, constraint, grammar, json_schema, regex
from genweave.dsl.errors import (
    BudgetExhaustedError,
    GenArgumentError,
    GenCheckError,
    GenError,
    GenModelError,
    GenRuntimeError,
    GenSyntaxError,
    NaNLogitsError,
    NoValidTokenError,
)
from genweave.runtime.result import Result, Results
from genweave.runtime.samplers import (
    dry,
    epsilon,
    eta,
    frequency_penalty,
    greedy,
    logit_bias,
    min_p,
    mirostat,
    presence_penalty,
    repetition_penalty,
    temperature,
    top_h,
    top_k,
    top_n_sigma,
    top_p,
    typical,
    xtc,
)
from genweave.samplers import Sampler, sampler

__all__ = [
    "BudgetExhaustedError",
    "ConstraintMatcher",
    "GenArgumentError",
    "GenCheckError",
    "GenError",
    "GenModelError",
    "GenRuntimeError",
    "GenSyntaxError",
    "Module",
    "NaNLogitsError",
    "NoValidTokenError",
    "Program",
    "Result",
    "Results",
    "Sampler",
    "choice",
    "compile",
    "constraint",
    "dry",
    "epsilon",
    "eta",
    "frequency_penalty",
    "grammar",
    "greedy",
    "json_schema",
    "logit_bias",
    "min_p",
    "mirostat",
    "presence_penalty",
    "regex",
    "repetition_penalty",
    "sampler",
    "temperature",
    "top_h",
    "top_k",
    "top_n_sigma",
    "top_p",
    "typical",
    "xtc",
]

__version__ = "0.1.0"
