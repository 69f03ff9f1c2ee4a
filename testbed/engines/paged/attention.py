"""Attention over a paged KV cache, pure torch (runs on CPU; on GPU SDPA picks its fused kernels).

Cache layout per layer: [num_blocks, block_size, kv_heads, head_dim]. A step's tokens are
flattened ([T, ...]); every token's K/V is written to its slot before attention reads, so a
prefill chunk sees its own keys. Decodes (one new token each) are batched into one SDPA call
over their block tables gathered and padded; prefill chunks run one call each.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class AttnMeta:
    """Per-step indices, built once and shared by every layer."""
    slots: torch.Tensor                  # [T] flat cache slot of each new token
    decode_rows: torch.Tensor            # [B] rows of the flattened tokens that are decodes
    decode_tables: torch.Tensor          # [B, max_blocks] block tables, padded with block 0
    decode_mask: torch.Tensor            # [B, 1, 1, max_blocks*block_size] True = attend
    prefills: list[tuple[int, int, int, torch.Tensor]]   # (row start, n new, n cached, block table)


def build_meta(items: list[tuple[int, int, list[int]]], block_size: int, device) -> AttnMeta:
    """items: (num_cached, num_new, block_table) per scheduled sequence, in flattened order."""
    slots, decodes, prefills, row = [], [], [], 0
    for cached, n, table in items:
        pos = range(cached, cached + n)
        slots += [table[p // block_size] * block_size + p % block_size for p in pos]
        if n == 1:
            decodes.append((row, cached + 1, table))
        else:
            prefills.append((row, n, cached, torch.tensor(table, dtype=torch.long, device=device)))
        row += n
    width = max((len(t) for _, _, t in decodes), default=0)
    tables = torch.zeros((len(decodes), width), dtype=torch.long)
    lengths = torch.tensor([ctx for _, ctx, _ in decodes], dtype=torch.long)
    for i, (_, _, t) in enumerate(decodes):
        tables[i, :len(t)] = torch.tensor(t, dtype=torch.long)
    mask = torch.arange(width * block_size)[None, :] < lengths[:, None]
    return AttnMeta(torch.tensor(slots, dtype=torch.long, device=device),
                    torch.tensor([r for r, _, _ in decodes], dtype=torch.long, device=device),
                    tables.to(device), mask[:, None, None, :].to(device), prefills)


def write_kv(k_cache: torch.Tensor, v_cache: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
             slots: torch.Tensor) -> None:
    """Store new keys/values [T, KVH, D] at their slots of one layer's cache."""
    kvh, d = k.shape[1:]
    k_cache.view(-1, kvh, d).index_copy_(0, slots, k)
    v_cache.view(-1, kvh, d).index_copy_(0, slots, v)


def gather(cache: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """Blocks of each table, concatenated: [..., nblk] -> [..., KVH, nblk*block_size, D]."""
    g = cache[tables]                                    # [..., nblk, bs, KVH, D]
    g = g.flatten(-4, -3)                                # [..., L, KVH, D]
    return g.transpose(-3, -2)                           # [..., KVH, L, D]


def paged_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor,
                    v_cache: torch.Tensor, meta: AttnMeta, scale: float) -> torch.Tensor:
    """q [T, H, D], this step's k/v [T, KVH, D] (already in the cache) -> output [T, H*D]."""
    out = torch.empty_like(q)
    if meta.decode_rows.numel():
        qd = q[meta.decode_rows][:, :, None, :]                                   # [B, H, 1, D]
        o = F.scaled_dot_product_attention(qd, gather(k_cache, meta.decode_tables),
                                           gather(v_cache, meta.decode_tables),
                                           attn_mask=meta.decode_mask, scale=scale, enable_gqa=True)
        out[meta.decode_rows] = o[:, :, 0, :]
    for row, n, cached, table in meta.prefills:
        out[row:row + n] = _prefill(q[row:row + n], k[row:row + n], v[row:row + n],
                                    k_cache, v_cache, cached, table, scale)
    return out.flatten(1)


def _prefill(q, k, v, k_cache, v_cache, cached: int, table: torch.Tensor, scale: float) -> torch.Tensor:
    """One chunk of n new tokens after `cached` cached ones: causal attention over all of them."""
    qh = q.transpose(0, 1)[None]                                                  # [1, H, n, D]
    if cached == 0:    # nothing cached: this chunk's own k/v, plain causal
        return F.scaled_dot_product_attention(qh, k.transpose(0, 1)[None], v.transpose(0, 1)[None],
                                              is_causal=True, scale=scale, enable_gqa=True)[0].transpose(0, 1)
    n = q.shape[0]
    total = cached + n
    keys = gather(k_cache, table)[None, :, :total]                                # [1, KVH, L, D]
    vals = gather(v_cache, table)[None, :, :total]
    mask = torch.arange(total, device=q.device)[None, :] <= (cached + torch.arange(n, device=q.device))[:, None]
    return F.scaled_dot_product_attention(qh, keys, vals, attn_mask=mask, scale=scale,
                                          enable_gqa=True)[0].transpose(0, 1)
