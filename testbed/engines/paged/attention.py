"""Attention over a paged KV cache, pure torch (runs on CPU; on GPU SDPA picks its fused kernels).

Cache layout per layer: [num_blocks, block_size, kv_heads, head_dim]. A step's tokens are
flattened ([T, ...]); every token's K/V is written to its slot before attention reads, so a
prefill chunk sees its own keys. Decodes (one new token each) are batched into SDPA calls over
their block tables gathered and padded, in groups of similar context length: padding every
decode to the longest one gathered and scored ~2x the keys needed on mixed 50-1,500-token
prompts, where attention was over half of a step (docs/vllm.md). Prefill chunks run one call each.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F


PAD_SLACK = 1.25     # a decode group gathers at most 25% more key blocks than its sequences use


@dataclass
class DecodeGroup:
    """Decodes of similar context length, attended in one SDPA call."""
    rows: torch.Tensor                   # [B] rows of the flattened tokens
    tables: torch.Tensor                 # [B, max_blocks] block tables, padded with block 0
    mask: torch.Tensor | None            # [B, 1, 1, max_blocks*block_size] True = attend; None: one sequence
    length: int                          # the longest context in the group


@dataclass
class AttnMeta:
    """Per-step indices, built once and shared by every layer."""
    slots: torch.Tensor                  # [T] flat cache slot of each new token
    decodes: list[DecodeGroup]
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
    groups = [_group(g, block_size, device) for g in _by_length(decodes, block_size)]
    return AttnMeta(torch.tensor(slots, dtype=torch.long, device=device), groups, prefills)


def _by_length(decodes: list, block_size: int) -> list[list]:
    """Longest first; a group grows while padding to its longest member wastes at most PAD_SLACK."""
    groups: list[list] = []
    width = used = 0      # the current group's longest member and its blocks in use
    for d in sorted(decodes, key=lambda d: -d[1]):
        blocks = -(-d[1] // block_size)
        if groups and (len(groups[-1]) + 1) * width <= PAD_SLACK * (used + blocks):
            groups[-1].append(d)
            used += blocks
        else:
            groups.append([d])
            width, used = blocks, blocks
    return groups


def _group(decodes: list, block_size: int, device) -> DecodeGroup:
    width = max(len(t) for _, _, t in decodes)
    tables = torch.zeros((len(decodes), width), dtype=torch.long)
    for i, (_, _, t) in enumerate(decodes):
        tables[i, :len(t)] = torch.tensor(t, dtype=torch.long)
    length = max(ctx for _, ctx, _ in decodes)
    mask = None
    if len(decodes) > 1:
        lengths = torch.tensor([ctx for _, ctx, _ in decodes], dtype=torch.long)
        mask = (torch.arange(width * block_size)[None, :] < lengths[:, None])[:, None, None, :].to(device)
    rows = torch.tensor([r for r, _, _ in decodes], dtype=torch.long, device=device)
    return DecodeGroup(rows, tables.to(device), mask, length)


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
    for g in meta.decodes:
        qd = q[g.rows][:, :, None, :]                                             # [B, H, 1, D]
        keys, vals = gather(k_cache, g.tables), gather(v_cache, g.tables)         # [B, KVH, L, D]
        if g.mask is None:      # one sequence: its own length, no mask (SDPA's fused CPU kernel)
            keys, vals = keys[:, :, :g.length], vals[:, :, :g.length]
        o = F.scaled_dot_product_attention(qd, keys, vals, attn_mask=g.mask, scale=scale, enable_gqa=True)
        out[g.rows] = o[:, :, 0, :]
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
