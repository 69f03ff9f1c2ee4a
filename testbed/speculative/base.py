"""The proposer interface: given the tokens so far, guess the next k; a registry maps method names to proposers.

    proposer = PROPOSERS.get("prompt_lookup")(cfg, lm)    # cfg: the validated `speculative:` section
    proposer.reset()                                        # before each request
    mine = proposer.fork()                                  # one per running sequence (paged engine)
    draft = proposer.propose(context_ids, k, sampling, generator)

A proposer may return fewer than k tokens (prompt lookup without a match returns none, and the
step becomes a plain decode step). Under sampling it also returns the distribution q each draft
token was drawn from; a deterministic proposer returns None and the verifier uses one-hot q.
"""
import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch

from testbed.registry import Registry
from testbed.request import SamplingParams


@dataclass
class Draft:
    tokens: list[int]                       # k' <= k proposed token ids
    probs: torch.Tensor | None = None       # q [k', V]: the distribution each token was sampled from; None = one-hot


class Proposer(ABC):
    """Guesses continuations for one request at a time; holds per-request state (a draft KV cache)."""

    def __init__(self, cfg: Any, lm: Any):
        self.cfg = cfg          # the validated `speculative:` section
        self.lm = lm            # the target testbed.models.LoadedModel

    def reset(self) -> None:
        """Forget per-request state; called before each request."""

    def fork(self) -> "Proposer":
        """A proposer for one more concurrent request: shares the models, owns fresh per-request state."""
        twin = copy.copy(self)
        twin.reset()
        return twin

    @abstractmethod
    def propose(self, context: list[int], k: int, sampling: SamplingParams,
                generator: torch.Generator | None) -> Draft:
        """Up to k tokens that may follow `context` (prompt + output so far)."""


PROPOSERS: Registry[type[Proposer]] = Registry("speculative method")
