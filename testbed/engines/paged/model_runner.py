"""Runs one scheduled step through the transformers weights with a paged KV cache.

All of a step's tokens (prefill chunks and decode tokens) are flattened into one [T, hidden]
sequence, so every weight is one matmul per step however many sequences run; only attention
is per sequence (attention.py). Weights are read from the loaded HF modules (embed, per layer
RMSNorm + q/k/v/o proj + rotary + MLP, final norm, lm_head), and the model's own rotary module
gives cos/sin, so the config's rope settings (theta, llama3/yarn/dynamic scaling) and GQA
carry over unchanged.

    runner = ModelRunner(lm, num_blocks=256, block_size=16)
    tokens = runner.run([(seq, n_new), ...])   # next token per item, None for unfinished prefill chunks
"""
import torch

from testbed.engines.paged.attention import build_meta, paged_attention, write_kv
from testbed.engines.paged.linear import Linears
from testbed.engines.paged.sequence import Sequence
from testbed.engines.sampling import sample
from testbed.errors import UserError
from testbed.speculative.verify import verify

SUPPORTED = ("llama", "qwen2")


def check_architecture(config) -> None:
    """UserError unless the model is a decoder the runner implements (Llama-family, full attention)."""
    kind = getattr(config, "model_type", "?")
    if kind not in SUPPORTED:
        raise UserError(f"engine paged: model type {kind!r} is not supported",
                        f"use a model of type {', '.join(SUPPORTED)} (SmolLM2, Llama, Qwen2), or engine: hf")
    if getattr(config, "use_sliding_window", False):
        raise UserError(f"engine paged: {kind} with sliding-window attention is not supported",
                        "use a checkpoint with use_sliding_window: false, or engine: hf")


def cache_bytes_for(lm, num_blocks: int, block_size: int) -> int:
    """Bytes of the K and V caches a ModelRunner over `lm` would allocate (the shapes it uses below)."""
    layers = lm.model.model.layers
    attn = layers[0].self_attn
    per_token = 2 * len(layers) * lm.model.config.num_key_value_heads * attn.head_dim * lm.dtype.itemsize
    return num_blocks * block_size * per_token


class ModelRunner:
    def __init__(self, lm, num_blocks: int, block_size: int, prepacked: bool | None = None):
        check_architecture(lm.model.config)
        self.lm = lm
        self.mm = Linears(lm, prepacked)          # oneDNN prepacked weights on the CPU (linear.py)
        self.core = lm.model.model               # embed_tokens, layers, norm, rotary_emb
        self.block_size = block_size
        attn = self.core.layers[0].self_attn
        self.head_dim, self.scale = attn.head_dim, attn.scaling
        cfg = lm.model.config
        self.n_heads, self.n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
        shape = (len(self.core.layers), num_blocks, block_size, self.n_kv, self.head_dim)
        self.k_cache = torch.zeros(shape, dtype=lm.dtype, device=lm.device)
        self.v_cache = torch.zeros(shape, dtype=lm.dtype, device=lm.device)

    def copy_blocks(self, pairs: list[tuple[int, int]]) -> None:
        """Copy-on-write: duplicate block src into dst in every layer."""
        for src, dst in pairs:
            self.k_cache[:, dst] = self.k_cache[:, src]
            self.v_cache[:, dst] = self.v_cache[:, src]

    @torch.inference_mode()
    def run(self, items: list[tuple[Sequence, int]]) -> list[int | list[int] | None]:
        """Compute the items' new tokens; per item: the next token of a sequence that reaches its end,
        None for an unfinished prefill chunk, or (a sequence with draft tokens) the verified tokens."""
        ids, pos = [], []
        for seq, n in items:
            ids += seq.token_ids[seq.num_computed:seq.num_computed + n] + seq.spec_tokens   # drafts: scheduled in full
            pos += range(seq.num_computed, seq.num_computed + n)
        dev = self.lm.device
        meta = build_meta([(s.num_computed, n, s.block_table) for s, n in items], self.block_size, dev)
        hidden = self.forward(torch.tensor(ids, device=dev), torch.tensor(pos, device=dev), meta)   # [T, hidden]
        ends = [s.num_computed + n == s.num_tokens + len(s.spec_tokens) for s, n in items]
        scored = [(s, 1 + len(s.spec_tokens)) for (s, _), e in zip(items, ends) if e]
        if not scored:
            return [None] * len(items)
        rows = _scored_rows(items, ends)
        logits = self.logits(hidden[torch.tensor(rows, device=dev)])                               # [R, V]
        picked = iter(pick_tokens(logits, scored))
        return [next(picked) if e else None for e in ends]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Final norm and LM head: hidden [R, hidden] -> logits [R, V]."""
        return self.mm(self.lm.model.lm_head, self.core.norm(hidden))

    def forward(self, ids: torch.Tensor, pos: torch.Tensor, meta) -> torch.Tensor:
        """ids, pos [T] -> hidden states [T, hidden] before the final norm."""
        x = self.core.embed_tokens(ids)[None]                              # [1, T, hidden]
        cos, sin = self.core.rotary_emb(x, pos[None])                      # [1, T, D]
        cos, sin = cos[0, :, None, :], sin[0, :, None, :]                  # [T, 1, D]
        for i, layer in enumerate(self.core.layers):
            x = x + self._attention(i, layer.self_attn, layer.input_layernorm(x)[0], cos, sin, meta)[None]
            x = x + self.mm.mlp(layer.mlp, layer.post_attention_layernorm(x))
        return x[0]

    def _attention(self, i: int, attn, h: torch.Tensor, cos, sin, meta) -> torch.Tensor:
        t = h.shape[0]
        q = self.mm(attn.q_proj, h).view(t, self.n_heads, self.head_dim)
        k = self.mm(attn.k_proj, h).view(t, self.n_kv, self.head_dim)
        v = self.mm(attn.v_proj, h).view(t, self.n_kv, self.head_dim)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        write_kv(self.k_cache[i], self.v_cache[i], k, v, meta.slots)
        return self.mm(attn.o_proj, paged_attention(q, k, v, self.k_cache[i], self.v_cache[i], meta, self.scale))


def _scored_rows(items: list[tuple[Sequence, int]], ends: list[bool]) -> list[int]:
    """Flattened rows whose logits are needed: the last 1 + k rows of every item that reaches its end."""
    rows = []
    for last, (seq, _), end in zip(_cumsum([n for _, n in items]), items, ends):
        if end:
            rows += range(last - 1 - len(seq.spec_tokens), last)
    return rows


def pick_tokens(logits: torch.Tensor, scored: list[tuple[Sequence, int]]) -> list[int | list[int]]:
    """logits [R, V], 1 + k rows per scored sequence -> its next token, or for a sequence with
    drafts the tokens the speculative verifier emits (accepted drafts + one)."""
    if all(m == 1 for _, m in scored):      # no drafts: one batched sample
        return sample(logits, [s.request.sampling for s, _ in scored], [s.generator for s, _ in scored])
    out, start = [], 0
    for seq, m in scored:
        rows = logits[start:start + m]                                              # [1+k, V]
        start += m
        if m == 1:
            out.append(sample(rows, [seq.request.sampling], [seq.generator])[0])
            continue
        draft = torch.tensor(seq.spec_tokens, dtype=torch.long, device=logits.device)   # [k]
        out.append(verify(draft, rows.float(), seq.request.sampling, seq.spec_probs, seq.generator)[0])
    return out


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _cumsum(values: list[int]) -> list[int]:
    out, total = [], 0
    for v in values:
        total += v
        out.append(total)
    return out
