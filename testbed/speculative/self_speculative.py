"""Self-speculative proposer: the target's first N layers, then its final norm and LM head, as the draft.

No second model: the draft is a shallow view of the target that shares every weight and runs
only `layers` of its decoder layers, with its own (N-layer) KV cache. It costs about N/L of a
target step; whether it pays depends on how often the shallow exit agrees with the full model.

    speculative: {method: self_speculative, layers: 12, num_draft_tokens: 3}   # or layers: 0.4 (of the depth)
"""
import copy
import weakref

import torch.nn as nn

from testbed.errors import UserError
from testbed.speculative.base import PROPOSERS
from testbed.speculative.draft_model import ModelDrafter


def _shallow(module: nn.Module) -> nn.Module:
    """A copy that shares parameters and submodules but whose submodule table can be replaced."""
    out = copy.copy(module)
    out._modules = module._modules.copy()
    return out


def truncated_model(model: nn.Module, layers: int) -> nn.Module:
    """A causal LM running the first `layers` decoder layers of `model`, then its norm and LM head."""
    total = model.config.num_hidden_layers
    if not 1 <= layers < total:
        raise UserError(f"speculative.layers: {layers} is not between 1 and {total - 1} "
                        f"(the target has {total} layers)", f"set layers to about {total // 3}")
    config = copy.deepcopy(model.config)
    config.num_hidden_layers = layers
    if getattr(config, "layer_types", None):
        config.layer_types = config.layer_types[:layers]
    draft = _shallow(model)
    draft.config = config
    draft.model = _shallow(model.model)
    draft.model.config = config
    draft.model.layers = nn.ModuleList(model.model.layers[:layers])
    draft.weights_of = weakref.ref(model)     # the paged runner packs the shared weights once (paged/linear.py)
    return draft


@PROPOSERS.register("self_speculative")
class SelfSpeculative(ModelDrafter):
    def __init__(self, cfg, lm):
        super().__init__(cfg, lm)
        self.model = truncated_model(lm.model, draft_depth(cfg.layers, lm.model.config.num_hidden_layers))


def draft_depth(layers: int | float | None, total: int) -> int:
    """Layers the draft runs: a count, a share of `total` (0.6), or half when unset; at least 1."""
    if layers is None:
        layers = 0.5
    return max(1, round(layers * total)) if isinstance(layers, float) else layers
