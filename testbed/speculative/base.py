"""The proposer interface: given the tokens so far, guess the next k; a registry maps method names to proposers.

    proposer = PROPOSERS.get("prompt_lookup")(cfg, lm)    # cfg: the validated `speculative:` section
    proposer.reset()                                        # before each request
    draft = proposer.propose(context_ids, k, sampling, generator)
    many = proposer.batched(block_size=16, num_blocks=512)  # the paged engine: every sequence in one call
    drafts = many.propose([Job(seq, context_ids, k, sampling, generator), ...]); many.forget(seq)

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

    def batched(self, block_size: int, num_blocks: int) -> "BatchProposer":
        """Drafts for many sequences per call (the paged engine). Default: one fork per sequence, drafting in
        turn; a model drafter overrides it to batch its forwards over a paged cache of `num_blocks` blocks."""
        return PerSequence(self)

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


@dataclass
class Job:
    """One sequence's draft request in a batched call."""
    key: Any                                # the sequence (its identity keys the per-sequence state)
    context: list[int]                      # prompt + output so far
    k: int
    sampling: SamplingParams
    generator: torch.Generator | None


class BatchProposer(ABC):
    @abstractmethod
    def propose(self, jobs: list[Job]) -> list[Draft]:
        """One draft per job, in order."""

    @abstractmethod
    def forget(self, key: Any) -> None:
        """The sequence `key` ended: drop its state."""


class PerSequence(BatchProposer):
    """A proposer forked per sequence; the sequences draft one after another."""

    def __init__(self, proposer: Proposer):
        self.proposer = proposer
        self.forks: dict[Any, Proposer] = {}

    def propose(self, jobs: list[Job]) -> list[Draft]:
        return [self._fork(j.key).propose(j.context, j.k, j.sampling, j.generator) for j in jobs]

    def forget(self, key: Any) -> None:
        self.forks.pop(key, None)

    def _fork(self, key: Any) -> Proposer:
        if key not in self.forks:
            self.forks[key] = self.proposer.fork()
        return self.forks[key]
