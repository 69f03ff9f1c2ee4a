"""Draft-model proposer: a small causal LM that shares the target's tokenizer guesses k tokens.

The draft keeps its own KV cache for the current request (on the paged engine, `batched` drafts for
every sequence at once over a paged draft cache: paged_draft.py). Before each proposal it crops that
cache to the longest prefix it shares with the accepted context (rolling back rejected guesses)
and feeds the 1–2 tokens it has not seen, then decodes k tokens one at a time. With `lookup: true`
(greedy) it feeds a prompt-lookup guess of its next tokens along with them and keeps the prefix the
draft agrees with: the same draft tokens, with fewer sequential draft forwards where outputs copy
the prompt.

    speculative: {method: draft_model, draft: {id: HuggingFaceTB/SmolLM2-135M-Instruct}, num_draft_tokens: 5}
"""
from typing import Any

import numpy as np
import torch

from testbed.engines.hf_cache import forward, new_cache, rollback
from testbed.engines.paged.model_runner import check_architecture
from testbed.engines.sampling import draw, logits_to_probs
from testbed.errors import UserError
from testbed.models import load_cached, load_model
from testbed.speculative.base import PROPOSERS, BatchProposer, Draft, PerSequence, Proposer
from testbed.speculative.paged_draft import PagedDrafter, agreed, common_prefix
from testbed.speculative.prompt_lookup import find_continuation


def check_same_tokenizer(target: Any, draft: Any) -> None:
    """UserError naming both models when the draft's tokenizer or vocabulary size differs from the target's."""
    tv, dv = target.tokenizer.get_vocab(), draft.tokenizer.get_vocab()
    if tv != dv:
        diff = len(set(tv.items()) ^ set(dv.items()))
        raise UserError(f"speculative.draft: the draft {draft.spec_id!r} tokenizer ({len(dv)} tokens) differs from "
                        f"the target {target.spec_id!r} tokenizer ({len(tv)} tokens; {diff} entries differ)",
                        "pick a draft from the target's model family (same tokenizer), "
                        "or use method: prompt_lookup or self_speculative")
    tn, dn = target.model.config.vocab_size, draft.model.config.vocab_size
    if tn != dn:     # the same tokens, but logits over a different id range: q and p would not line up
        raise UserError(f"speculative.draft: the draft {draft.spec_id!r} scores {dn} token ids, the target "
                        f"{target.spec_id!r} {tn} (the same tokenizer, a different vocabulary size)",
                        "pick a draft whose config vocab_size equals the target's, "
                        "or use method: prompt_lookup or self_speculative")


class ModelDrafter(Proposer):
    """Drafts with `self.model` (a causal LM over the target's vocabulary) and its own KV cache."""

    model: Any

    def reset(self) -> None:
        self.cache = new_cache(self.model)
        self.seen: list[int] = []          # the tokens self.cache holds

    def batched(self, block_size: int, num_blocks: int) -> BatchProposer:
        """Every sequence's draft in one forward per position over a paged draft cache, where the paged
        runner implements the draft's architecture; else one HF-cache fork per sequence."""
        try:
            check_architecture(self.model.config)
        except UserError:
            return PerSequence(self)
        return PagedDrafter(self.model, block_size, num_blocks, self.guess)

    def propose(self, context, k, sampling, generator) -> Draft:
        keep = min(common_prefix(self.seen, context), len(context) - 1)
        rollback(self.cache, keep)
        guess = self.guess(context, k, sampling)
        logits = forward(self.model, context[keep:] + guess, self.cache, keep=len(guess) + 1)   # [g+1, V]
        n = agreed(guess, logits)
        rollback(self.cache, len(context) + n)         # the guess beyond what the draft itself would make
        self.seen = list(context) + guess[:n]
        tokens, probs, logits = guess[:n], [], logits[n]
        while len(tokens) < k:
            tok, q = self._pick(logits, sampling, generator)
            tokens.append(tok)
            probs.append(q)
            if len(tokens) < k:
                logits = forward(self.model, [tok], self.cache, keep=1)[-1]
                self.seen.append(tok)
        return Draft(tokens, None if sampling.greedy else torch.stack(probs))   # q [k, V]

    def guess(self, context: list[int], k: int, sampling) -> list[int]:
        """`lookup: true`, greedy: up to k tokens prompt lookup expects, checked by the draft in one forward;
        the agreeing prefix replaces as many one-token draft forwards. Else none."""
        if not (self.cfg.lookup and sampling.greedy):
            return []
        return find_continuation(np.asarray(context, dtype=np.int64), k, self.cfg.ngram, self.cfg.ngram_min)

    def _pick(self, logits: torch.Tensor, sampling, generator) -> tuple[int, torch.Tensor | None]:
        if sampling.greedy:
            return int(logits.argmax()), None
        q = logits_to_probs(logits, sampling)
        return draw(q, generator), q


@PROPOSERS.register("draft_model")
class DraftModel(ModelDrafter):
    def __init__(self, cfg, lm, draft_lm: Any | None = None):
        super().__init__(cfg, lm)
        same = cfg.draft.id == lm.spec_id and cfg.draft.dtype in ("auto", str(lm.dtype).removeprefix("torch."))
        if draft_lm is None and not same:      # once per experiment when bound to one (arms share its weights)
            draft_lm = load_model(cfg.draft, lm.device) if cfg._models is None else \
                load_cached(cfg._models, cfg.draft, lm.device)
        self.draft_lm = draft_lm or lm
        check_same_tokenizer(lm, self.draft_lm)
        self.model = self.draft_lm.model
