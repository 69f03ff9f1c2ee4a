"""The paged runner's matmuls: oneDNN with prepacked weights on the CPU, plain F.linear elsewhere.

On the CPU in float32, torch's F.linear re-lays the weight out for every call; oneDNN's
prepacked form (`torch.ops.mkldnn._linear_pointwise` over `_reorder_linear_weight`, the path
inductor and vLLM's CPU build take) skips that (measured in docs/vllm.md). The packed copy (one per loaded
model, shared by its paged engines) is the runner's own: the shared transformers model, which the hf engine runs, is
untouched. It lives only while a paged engine holds it, so a sequential run frees it (a full copy of the weights)
before the next arm, e.g. vLLM's own copy, loads. Rounding differs from F.linear's in the last bits, so
greedy tokens are checked against hf by every paged arm (match_rate_vs_baseline).

    mm = Linears(lm, enabled=True); y = mm(layer.mlp.up_proj, x)
"""
import weakref

import torch
import torch.nn.functional as F


class Packed(dict):
    """{id(linear): packed weight} for one model; a dict subclass so the cache can refer to it weakly."""


# model -> its Packed, held weakly on both sides: one packed copy per loaded model however many paged engines
# (arms, warm-ups, drafts) run it, gone when the last of them is closed or the model is
_PACKED: "weakref.WeakKeyDictionary[torch.nn.Module, weakref.ref[Packed]]" = weakref.WeakKeyDictionary()


def _supported(lm) -> bool:
    return (lm.device.type == "cpu" and lm.dtype == torch.float32 and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))


def weights_owner(model: torch.nn.Module) -> torch.nn.Module:
    """The model whose weights `model` runs: itself, or for a view that shares them (self-speculative's
    first-N-layers draft) the full model, so the view reuses its packed copy instead of packing again."""
    ref = getattr(model, "weights_of", None)
    owner = ref() if ref is not None else None
    return model if owner is None else owner


def _packed(model: torch.nn.Module) -> Packed:
    model = weights_owner(model)
    ref = _PACKED.get(model)
    packed = ref() if ref is not None else None
    if packed is None:
        with torch.inference_mode():
            packed = Packed({id(m): torch.ops.mkldnn._reorder_linear_weight(m.weight.detach(), None)
                             for m in model.modules() if isinstance(m, torch.nn.Linear)})
        _PACKED[model] = weakref.ref(packed)
    return packed


def packed_bytes(lm, enabled: bool | None = None) -> int:
    """What the packed copy of lm's linear weights takes (0 where the runner does not pack)."""
    if not (_supported(lm) if enabled is None else enabled and _supported(lm)):
        return 0
    return sum(m.weight.numel() * m.weight.element_size() for m in lm.model.modules() if isinstance(m, torch.nn.Linear))


class Linears:
    """Computes `linear(x)` for the model's nn.Linear modules, from prepacked weights where it can."""

    def __init__(self, lm, enabled: bool | None = None):
        self.on = _supported(lm) if enabled is None else enabled and _supported(lm)
        self.packed: dict[int, torch.Tensor] = _packed(lm.model) if self.on else {}

    def __call__(self, mod: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
        w = self.packed.get(id(mod))
        if w is None:
            return F.linear(x, mod.weight, mod.bias)
        flat = x.reshape(-1, x.shape[-1])                                    # [rows, in]
        y = torch.ops.mkldnn._linear_pointwise(flat, w, mod.bias, "none", [], "")   # [rows, out]
        return y.view(*x.shape[:-1], y.shape[-1])

    def mlp(self, mlp, x: torch.Tensor) -> torch.Tensor:
        """A gated MLP (Llama, Qwen2): down(act(gate(x)) * up(x))."""
        return self(mlp.down_proj, mlp.act_fn(self(mlp.gate_proj, x)) * self(mlp.up_proj, x))
