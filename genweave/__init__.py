"""genweave: a declarative language, compiler and runtime for constrained and structured decoding.

>>> import genweave
>>> module = genweave.compile('program hi() -> str:\\n    "Hello"\\n    x = gen max 3 tokens\\n    return x\\n')
>>> module.program_names
('hi',)
"""

from genweave.api import Module, Program, compile
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

__all__ = [
    "BudgetExhaustedError",
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
    "compile",
]

__version__ = "0.1.0"
