"""A sequence: one request's tokens, how many of them sit in the KV cache, and its block table.

`token_ids` is prompt + outputs so far; the last sampled token is not in the cache until the
next step computes it. A preempted sequence keeps its tokens and recomputes them all
(preemption by recompute), so after a preemption its "prompt" is prompt + outputs so far.

Speculative decoding: `spec_tokens` are draft tokens proposed for the next step. They are not in
`token_ids`; the step computes them after the last token, and only the accepted ones join.
"""
from dataclasses import dataclass, field
from enum import Enum

import torch

from testbed.engines.sampling import make_generator
from testbed.request import Request


class SeqStatus(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(eq=False)
class Sequence:
    request: Request
    token_ids: list[int] = field(default_factory=list)
    num_computed: int = 0                    # tokens whose K/V are in the cache
    block_table: list[int] = field(default_factory=list)
    status: SeqStatus = SeqStatus.WAITING
    generator: torch.Generator | None = None
    spec_tokens: list[int] = field(default_factory=list)     # draft tokens this step verifies
    spec_probs: torch.Tensor | None = None                   # q [k, V] they were sampled from; None = one-hot

    @classmethod
    def from_request(cls, req: Request) -> "Sequence":
        return cls(req, list(req.prompt_ids) + list(req.output_ids), generator=make_generator(req.sampling))

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def num_uncomputed(self) -> int:
        return self.num_tokens - self.num_computed

    @property
    def is_decoding(self) -> bool:
        """Every token but the last sampled one is in the cache: the next step is a decode step."""
        return self.num_uncomputed == 1

    def append(self, token: int) -> None:
        self.token_ids.append(token)

    def clear_draft(self) -> None:
        self.spec_tokens, self.spec_probs = [], None
