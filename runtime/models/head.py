"""The output head of a CPU float32 model with its weight prepacked for oneDNN.

At decoding batch sizes the output projection (``[rows, d] x [d, V]``, the largest matrix of a
small model: 28M of SmolLM2's 135M parameters) is bound by reading its weight. oneDNN's blocked
weight layout reads it faster than the plain row-major GEMM (about 10 ms less per step for 16 rows
on SmolLM2, 2 threads; ``bench/smc.py``). The arithmetic stays float32; only the summation order
differs (logits agree to about 1e-6).

:func:`with_packed_head` returns a *shallow copy* of the model whose head is a :class:`PackedHead`
(every other module and every weight shared); the caller's model is never modified. Models on
other devices or dtypes, heads that are not a plain ``Linear``, and builds of torch without
oneDNN are returned unchanged. :func:`with_plain_head` undoes it (``HFModel(..., pack_head=False)``).
"""

from __future__ import annotations

import copy

import torch


class PackedHead(torch.nn.Module):
    """``Linear(d, V)`` computed by oneDNN from a prepacked copy of the weight (CPU, float32).

    ``weight``/``bias`` stay the original parameters (code that inspects the head reads them)."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        self.weight = linear.weight
        self.bias = linear.bias
        self.in_features, self.out_features = linear.in_features, linear.out_features
        with torch.no_grad():
            self._packed_weight = linear.weight.detach().to_mkldnn()
            self._packed_bias = None if linear.bias is None else linear.bias.detach().to_mkldnn()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        shape = hidden.shape
        rows = hidden.detach().reshape(-1, shape[-1]).contiguous().to_mkldnn()
        out = torch._C._nn.mkldnn_linear(rows, self._packed_weight, self._packed_bias).to_dense()
        return out.reshape(*shape[:-1], self.out_features)


def with_packed_head(model: torch.nn.Module) -> torch.nn.Module:
    """``model``, or a shallow copy of it with a :class:`PackedHead` (module docstring)."""
    head = _head(model)
    if not (type(head) is torch.nn.Linear and head.weight.device.type == "cpu"
            and head.weight.dtype == torch.float32 and torch.backends.mkldnn.is_available()):
        return model
    return _replace(model, head, PackedHead(head))


def with_plain_head(model: torch.nn.Module) -> torch.nn.Module:
    """``model``, or, when its head is a :class:`PackedHead`, a shallow copy with a plain
    ``Linear`` head on the same parameters (the transformers computation, bit for bit)."""
    head = _head(model)
    if not isinstance(head, PackedHead):
        return model
    linear = torch.nn.Linear(head.in_features, head.out_features, bias=head.bias is not None,
                             device="meta")
    linear.weight, linear.bias = head.weight, head.bias
    return _replace(model, head, linear)


def _head(model: torch.nn.Module) -> torch.nn.Module | None:
    return model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None


def _replace(model: torch.nn.Module, head: torch.nn.Module, new: torch.nn.Module) -> torch.nn.Module:
    names = [name for name, module in model.named_children() if module is head]
    if len(names) != 1:
        return model
    copied = copy.copy(model)
    copied._modules = dict(model._modules)
    copied._modules[names[0]] = new
    return copied
