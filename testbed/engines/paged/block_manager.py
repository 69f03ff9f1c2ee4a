"""Fixed-size KV blocks: a free queue, reference counts, and prefix sharing by block hash.

    bm = BlockManager(num_blocks=64, block_size=16, prefix_caching=True)
    bm.allocate(seq)                 # attach cached blocks of an identical prompt prefix
    if bm.can_append(seq, n):        # room for the next n tokens of seq?
        copies = bm.may_append(seq, n)   # grow the block table; (src, dst) copy-on-write pairs
    bm.commit(seq)                   # after the forward: hash the blocks that became full
    bm.trim(seq)                     # after a speculative step: free blocks that held only rejected drafts
    bm.deallocate(seq)               # finish or preempt: drop references

Invariants (tests/test_block_manager.py checks them over random operation sequences): a block
is in the free queue exactly when its ref count is 0; the ref count of a block equals the
number of block tables holding it. A freed block keeps its hash until it is reused, so a
later request with the same prefix can still hit it; the free queue hands out the least
recently freed block first.
"""
from collections import OrderedDict
from dataclasses import dataclass, field

from testbed.engines.paged.sequence import Sequence


@dataclass
class Block:
    id: int
    ref_count: int = 0
    hash: int | None = None
    token_ids: tuple[int, ...] = field(default_factory=tuple)


def blocks_for(num_tokens: int, block_size: int) -> int:
    return -(-num_tokens // block_size)


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int, prefix_caching: bool = True):
        assert num_blocks > 0 and block_size > 0
        self.block_size = block_size
        self.prefix_caching = prefix_caching
        self.blocks = [Block(i) for i in range(num_blocks)]
        self.free: OrderedDict[int, None] = OrderedDict.fromkeys(range(num_blocks))
        self.hash_to_block: dict[int, int] = {}

    @property
    def num_free(self) -> int:
        return len(self.free)

    @property
    def num_used(self) -> int:
        return len(self.blocks) - len(self.free)

    def allocate(self, seq: Sequence) -> int:
        """Attach cached blocks for seq's longest cached prefix; return the tokens it skips computing.

        Only full blocks before the last token count: the last token is always computed, since
        its logits give the next token.
        """
        assert not seq.block_table and seq.num_computed == 0
        if not self.prefix_caching:
            return 0
        prev = None
        for i in range((seq.num_tokens - 1) // self.block_size):
            tokens = tuple(seq.token_ids[i * self.block_size:(i + 1) * self.block_size])
            h = hash((prev, tokens))
            bid = self.hash_to_block.get(h)
            if bid is None or self.blocks[bid].token_ids != tokens:
                break
            self._ref(bid)
            seq.block_table.append(bid)
            prev = h
        seq.num_computed = len(seq.block_table) * self.block_size
        return seq.num_computed

    def blocks_needed(self, seq: Sequence, n: int) -> int:
        grow = max(0, blocks_for(seq.num_computed + n, self.block_size) - len(seq.block_table))
        return grow + int(self._shared_tail(seq) is not None)

    def can_append(self, seq: Sequence, n: int) -> bool:
        return self.blocks_needed(seq, n) <= self.num_free

    def may_append(self, seq: Sequence, n: int) -> list[tuple[int, int]]:
        """Make seq's table cover num_computed + n tokens; return copy-on-write (src, dst) pairs."""
        copies = []
        idx = self._shared_tail(seq)
        if idx is not None:       # the block written next is shared (a rollback into a cached block): copy it
            src = seq.block_table[idx]
            dst = self._take_free()
            self.blocks[src].ref_count -= 1
            seq.block_table[idx] = dst
            copies.append((src, dst))
        while len(seq.block_table) < blocks_for(seq.num_computed + n, self.block_size):
            seq.block_table.append(self._take_free())
        return copies

    def commit(self, seq: Sequence) -> None:
        """Register the hashes of seq's blocks that are full of computed tokens."""
        if not self.prefix_caching:
            return
        prev = None
        for i in range(seq.num_computed // self.block_size):
            block = self.blocks[seq.block_table[i]]
            if block.hash is None:
                tokens = tuple(seq.token_ids[i * self.block_size:(i + 1) * self.block_size])
                block.hash, block.token_ids = hash((prev, tokens)), tokens
                self.hash_to_block[block.hash] = block.id
            prev = block.hash

    def trim(self, seq: Sequence) -> int:
        """Free the tail blocks beyond seq's computed tokens (rejected draft slots); return how many."""
        keep = blocks_for(seq.num_computed, self.block_size)
        tail = seq.block_table[keep:]
        del seq.block_table[keep:]
        self._release(tail)
        return len(tail)

    def deallocate(self, seq: Sequence) -> None:
        """Drop seq's references; blocks reaching 0 return to the free queue, tail blocks first."""
        self._release(seq.block_table)
        seq.block_table = []
        seq.num_computed = 0

    def _release(self, table: list[int]) -> None:
        for bid in reversed(table):
            block = self.blocks[bid]
            assert block.ref_count > 0, f"block {bid} freed twice"
            block.ref_count -= 1
            if block.ref_count == 0:
                self.free[bid] = None

    def _shared_tail(self, seq: Sequence) -> int | None:
        """Index of the partly filled block seq writes next, when another table shares it."""
        idx = seq.num_computed // self.block_size
        if seq.num_computed % self.block_size and idx < len(seq.block_table) \
                and self.blocks[seq.block_table[idx]].ref_count > 1:
            return idx
        return None

    def _ref(self, bid: int) -> None:
        block = self.blocks[bid]
        if block.ref_count == 0:
            del self.free[bid]
        block.ref_count += 1

    def _take_free(self) -> int:
        bid, _ = self.free.popitem(last=False)
        block = self.blocks[bid]
        if block.hash is not None and self.hash_to_block.get(block.hash) == bid:
            del self.hash_to_block[block.hash]
        block.hash, block.token_ids, block.ref_count = None, (), 1
        return bid
