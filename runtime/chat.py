"""Role blocks through a model's chat template, one block at a time.

A program's role blocks are rendered incrementally: opening a block appends the template's text
up to where the new message's content starts; literals and holes then write the content
directly; closing the block appends the template's text after the content. Both are found by
rendering the conversation with a sentinel as the open message's content, so any template that
inserts content verbatim works. A template that rewrites earlier text (so that a rendering no
longer extends what was already emitted) is reported, never silently patched.
"""

from __future__ import annotations

from collections.abc import Sequence

from genweave.dsl.errors import GenModelError
from genweave.runtime.models.base import LanguageModel

_SENTINEL = "\x00genweave-open-content\x00"


def open_message(model: LanguageModel, messages: Sequence[dict[str, str]], role: str) -> str:
    """The templated conversation followed by the start of an empty ``role`` message."""
    rendered = model.render_chat([*messages, {"role": role, "content": _SENTINEL}])
    cut = rendered.find(_SENTINEL)
    if cut < 0:
        raise GenModelError(f"the chat template of {model.name!r} drops the content of a "
                            f"'{role}' message", hint="use a model whose template keeps message text")
    return rendered[:cut]


def close_message(model: LanguageModel, messages: Sequence[dict[str, str]]) -> str:
    """The templated conversation with its last message closed."""
    return model.render_chat(list(messages))


def continuation(before: str, after: str, model: LanguageModel, role: str) -> str:
    """The text ``after`` adds to ``before``, which it must extend."""
    if not after.startswith(before):
        raise GenModelError(
            f"the chat template of {model.name!r} rewrites earlier text when a '{role}' block is "
            "added, so the conversation cannot be extended in place",
            hint="avoid leading/trailing whitespace in role text, or use a model without `chat`")
    return after[len(before):]
