"""Collects the problems of one check: errors (raised together at the end) and warnings."""

from __future__ import annotations

from dataclasses import dataclass, field

from genweave.compiler.features import SupportedFeatures
from genweave.dsl import ast
from genweave.dsl.errors import GenCheckError, GenError, Span
from genweave.dsl.strings import span_in_string


@dataclass
class Problems:
    """Every error and warning found so far, over all the modules of one check."""

    errors: list[GenError] = field(default_factory=list)
    warnings: list[GenError] = field(default_factory=list)


@dataclass
class Report:
    """Reports problems about one module (its file and source text go into each message)."""

    module: ast.Module
    problems: Problems
    supported: SupportedFeatures

    def error(self, message: str, span: Span, hint: str | None = None) -> None:
        self.problems.errors.append(GenCheckError(message, span=self._span(span), source=self.module.source,
                                                  hint=hint))

    def warn(self, message: str, span: Span, hint: str | None = None) -> None:
        self.problems.warnings.append(GenError(message, span=self._span(span), source=self.module.source,
                                               hint=hint))

    def require(self, feature: str, span: Span) -> bool:
        """Report ``feature`` as not supported yet unless the runtime supports it."""
        if self.supported.allows(feature):
            return True
        self.error(f"{SupportedFeatures.describe(feature)} is not supported yet", span,
                   hint="the language accepts it, but the runtime cannot run it yet")
        return False

    def embedded(self, string: ast.String, problems: list[tuple[str, int, int]]) -> None:
        """Errors inside an embedded regex, grammar or schema, pointing into the literal."""
        for message, start, end in problems:
            self.error(message, span_in_string(string, self.module.source, start, end, verbatim=True))

    def embedded_warnings(self, string: ast.String, notes: list[tuple[str, int, int]]) -> None:
        """Warnings about an embedded schema, pointing into the literal."""
        for message, start, end in notes:
            self.warn(message, span_in_string(string, self.module.source, start, end, verbatim=True))

    def _span(self, span: Span) -> Span:
        return Span(span.line, span.col, span.end_line, span.end_col, self.module.file)
