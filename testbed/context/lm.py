"""The small model as a tool of the context layer: token log-probabilities and short greedy summaries.

    lp = token_logprobs(lm, [[1, 2, 3], [4, 5]])       # [[0.0, -2.1, -0.3], [0.0, -1.7]]

Sequences run in right-padded batches of `batch` under no_grad; the first token of a sequence has
no context and gets log-probability 0 (callers decide what that means for them).
"""
from typing import Any

import torch


@torch.no_grad()
def token_logprobs(lm: Any, seqs: list[list[int]], batch: int = 8) -> list[list[float]]:
    """log p(token_t | tokens_<t) for every token of every sequence (0.0 for each first token)."""
    live = [s for s in seqs if s]
    scored: list[list[float]] = []
    for i in range(0, len(live), batch):
        scored += _batch_logprobs(lm, live[i:i + batch])
    it = iter(scored)
    return [next(it) if s else [] for s in seqs]


def _batch_logprobs(lm: Any, seqs: list[list[int]]) -> list[list[float]]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), lm.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[r, :len(s)] = 1
    logits = lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device)).logits   # [B, S, V]
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)                                    # [B, S-1, V]
    picked = logp.gather(-1, ids[:, 1:, None].to(lm.device)).squeeze(-1).cpu()                 # [B, S-1]
    return [[0.0] + picked[r, :len(s) - 1].tolist() for r, s in enumerate(seqs)]


@torch.no_grad()
def greedy_text(lm: Any, prompt: str, max_new_tokens: int) -> str:
    """The model's greedy continuation of `prompt` (chat-formatted when the tokenizer has a template)."""
    tok = lm.tokenizer
    if getattr(tok, "chat_template", None):
        prompt = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"].to(lm.device)
    out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                            do_sample=False, pad_token_id=lm.pad_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
