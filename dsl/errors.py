"""The one error hierarchy of genweave.

Every error a user can see derives from :class:`GenError`. Errors about ``.gen`` source carry a
:class:`Span` and render as ``file:line:col: message`` followed by the source line and a caret.

This module imports nothing from the rest of genweave, so every stage (including the runtime,
which otherwise never imports ``genweave.dsl``) may raise these errors.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source text: 1-based lines and columns, ``end_col`` exclusive."""

    line: int
    col: int
    end_line: int
    end_col: int
    file: str = "<source>"

    def label(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class GenError(Exception):
    """Base class of every user-facing genweave error.

    ``hint`` is an optional sentence telling the user what to do about it.
    """

    def __init__(self, message: str, *, span: Span | None = None, source: str | None = None,
                 hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.source = source
        self.hint = hint

    def render(self) -> str:
        """``file:line:col: message``, the source line and a caret (or just the message)."""
        if self.span is None:
            text = f"error: {self.message}"
        else:
            text = f"{self.span.label()}: {self.message}"
            snippet = caret_snippet(self.source, self.span)
            if snippet:
                text += "\n" + snippet
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.render()


def caret_snippet(source: str | None, span: Span) -> str:
    """The span's first line, indented, with carets under the spanned columns."""
    if not source:
        return ""
    lines = source.splitlines()
    if not 1 <= span.line <= len(lines):
        return ""
    line = lines[span.line - 1].expandtabs(1)
    end = span.end_col if span.end_line == span.line and span.end_col > span.col else span.col + 1
    width = max(1, min(end, len(line) + 1) - span.col)
    return f"    {line}\n    {' ' * (span.col - 1)}{'^' * width}"


class GenSyntaxError(GenError):
    """The source does not parse."""


class GenCheckError(GenError):
    """The source parses but is not a valid program (names, types, parameter ranges).

    ``errors`` holds every problem found when several are reported at once.
    """

    def __init__(self, message: str, *, span: Span | None = None, source: str | None = None,
                 hint: str | None = None, errors: list[GenError] | None = None):
        super().__init__(message, span=span, source=source, hint=hint)
        self.errors = errors or [self]

    def render(self) -> str:
        if len(self.errors) > 1 or self.errors[0] is not self:
            return "\n".join(e.render() for e in self.errors)
        return super().render()


class GenModelError(GenError):
    """A model cannot be found, loaded or used."""


class GenArgumentError(GenError):
    """A program was called with missing, unknown or ill-typed arguments."""


class GenRuntimeError(GenError):
    """Decoding reached a state it cannot continue from."""


class NoValidTokenError(GenRuntimeError):
    """Every token of a row is excluded (by masks, samplers or constraints)."""


class NaNLogitsError(GenRuntimeError):
    """A model or logits processor produced NaN."""


class BudgetExhaustedError(GenRuntimeError):
    """A hole reached its ``max N tokens`` budget before its constraint could be completed."""
