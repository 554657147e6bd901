"""Token masks computed while the model runs: the next step's mask overlaps the forward pass.

The mask of decoding step ``t + 1`` depends only on the constraint states after the tokens drawn
at step ``t``, not on the model's next logits. So once those tokens are recorded, the mask work
(matcher walks, first visits of a state, unpacking to a bool mask) can run on a background thread
while the main thread runs the forward pass that produces step ``t + 1``'s logits. Both sides
release the GIL for their heavy parts: torch inside its operators, the numba mask kernels
(``nogil=True``) inside the trie walks.

Masks are deterministic functions of the states, so results are identical with and without
overlap (and a fixed seed gives bit-identical draws); an exception raised while computing a mask
is re-raised by :meth:`MaskPrefetcher.take`, at the step that asked for the mask, exactly where the
sequential loop would have raised it.

>>> calls = []
>>> with MaskPrefetcher(lambda: calls.append(len(calls)) or len(calls)) as prefetch:
...     prefetch.start()          # step 0's mask starts in the background
...     first = prefetch.take()   # ... and is handed over here
...     second = prefetch.take()  # nothing started: computed now
>>> first, second
(1, 2)
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")


class MaskPrefetcher(Generic[T]):
    """Runs ``compute`` (a function of the decoding state as it is when the computation starts) on
    one background thread between :meth:`start` and :meth:`take`.

    Contract for the caller: between ``start()`` and ``take()`` nothing may change what
    ``compute`` reads (the constraint states, which rows are active); the forward pass does not.
    With ``overlap=False`` (or without a ``start()``), ``take()`` simply computes the mask now.
    Use it as a context manager: leaving it waits for a computation still running and stops the
    thread, so no background work outlives the loop that asked for it.
    """

    def __init__(self, compute: Callable[[], T], *, overlap: bool = True):
        self._compute = compute
        self._executor = (ThreadPoolExecutor(max_workers=1, thread_name_prefix="genweave-mask")
                          if overlap else None)
        self._pending: Future[T] | None = None

    @property
    def overlapping(self) -> bool:
        return self._executor is not None

    def start(self) -> None:
        """Begin computing the mask of the current state (in the background when overlapping)."""
        if self._executor is None:
            return
        if self._pending is not None:
            raise RuntimeError("MaskPrefetcher.start() called twice without take()")
        self._pending = self._executor.submit(self._compute)

    def take(self) -> T:
        """The mask of the state at the last :meth:`start` (computed now when none was started);
        re-raises the exception its computation raised. A computation the background thread has
        not begun yet (a busy machine gave it no core during the forward pass) is cancelled and
        run here instead: never slower than computing it in line."""
        pending, self._pending = self._pending, None
        if pending is None or pending.cancel():
            return self._compute()
        return pending.result()

    def close(self) -> None:
        """Wait for a running computation (dropping its result or exception) and stop the thread."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        self._pending = None

    def __enter__(self) -> MaskPrefetcher[T]:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
