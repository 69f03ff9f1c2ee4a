"""Block manager: allocation pairs, prefix sharing, copy-on-write, and no leaks over random operations."""
from hypothesis import given, settings, strategies as st

from testbed.engines.paged.block_manager import BlockManager
from testbed.engines.paged.sequence import Sequence
from testbed.request import Request


def seq(tokens: list[int]) -> Sequence:
    return Sequence.from_request(Request(id="s", prompt_ids=tokens, max_new_tokens=8))


def check_invariants(bm: BlockManager, live: list[Sequence]) -> None:
    refs = {}
    for s in live:
        for bid in s.block_table:
            refs[bid] = refs.get(bid, 0) + 1
    for block in bm.blocks:
        assert block.ref_count == refs.get(block.id, 0), f"block {block.id}: ref count vs tables"
        assert (block.id in bm.free) == (block.ref_count == 0), f"block {block.id}: free queue vs ref count"


def test_append_grows_by_whole_blocks_and_deallocate_returns_them():
    bm = BlockManager(num_blocks=4, block_size=4)
    s = seq(list(range(6)))
    assert bm.can_append(s, 6) and bm.blocks_needed(s, 6) == 2
    bm.may_append(s, 6)
    assert len(s.block_table) == 2 and bm.num_free == 2
    s.num_computed = 6
    assert bm.blocks_needed(s, 2) == 0 and bm.blocks_needed(s, 3) == 1
    assert not bm.can_append(s, 15)
    bm.deallocate(s)
    assert bm.num_free == 4 and s.block_table == [] and s.num_computed == 0


def test_identical_prefix_reuses_full_blocks_but_recomputes_the_last_token():
    bm = BlockManager(num_blocks=8, block_size=4)
    a = seq(list(range(10)))
    bm.may_append(a, 10)
    a.num_computed = 10
    bm.commit(a)
    b = seq(list(range(10)) + [99])
    assert bm.allocate(b) == 8 and b.block_table == a.block_table[:2]
    assert bm.blocks[a.block_table[0]].ref_count == 2
    c = seq(list(range(8)))                 # fully cached prompt: its last block is recomputed
    assert bm.allocate(c) == 4
    d = seq([7] + list(range(1, 10)))       # differs in the first block: no hit
    assert bm.allocate(d) == 0


def test_freed_block_keeps_its_hash_until_reused():
    bm = BlockManager(num_blocks=3, block_size=2)
    a = seq([1, 2, 3, 4, 5])
    bm.may_append(a, 5)
    a.num_computed = 5
    bm.commit(a)
    bm.deallocate(a)
    b = seq([1, 2, 3, 4, 9])
    assert bm.allocate(b) == 4 and bm.num_free == 1
    bm.deallocate(b)
    filler = seq(list(range(100, 106)))
    bm.may_append(filler, 6)                # takes every block: the old hashes are evicted
    assert bm.allocate(seq([1, 2, 3, 4, 9])) == 0


def test_a_shared_block_written_after_a_rollback_is_copied_first():
    bm = BlockManager(num_blocks=6, block_size=4)
    parent = seq(list(range(8)))
    bm.may_append(parent, 8)
    parent.num_computed = 8
    bm.commit(parent)
    child = seq(list(range(8)) + [99])
    assert bm.allocate(child) == 8                  # both full blocks shared through the prefix cache
    assert child.block_table == parent.block_table and bm.blocks[parent.block_table[1]].ref_count == 2
    child.num_computed = 6                          # a speculative rollback into the shared second block
    assert bm.blocks_needed(child, 1) == 1
    copies = bm.may_append(child, 1)
    assert copies == [(parent.block_table[1], child.block_table[1])]
    assert child.block_table[0] == parent.block_table[0] and child.block_table[1] != parent.block_table[1]
    check_invariants(bm, [parent, child])


def test_trim_frees_the_blocks_that_held_only_rejected_drafts():
    bm = BlockManager(num_blocks=8, block_size=4)
    s = seq(list(range(6)))
    bm.may_append(s, 6 + 7)                 # 6 tokens + 7 draft slots: 4 blocks
    assert len(s.block_table) == 4
    s.num_computed = 6 + 2                  # 2 drafts accepted, 5 rejected
    tail = s.block_table[2:]
    assert bm.trim(s) == 2 and len(s.block_table) == 2 and all(b in bm.free for b in tail)
    assert bm.trim(s) == 0
    check_invariants(bm, [s])


ops = st.lists(st.tuples(st.sampled_from(["new", "append", "speculate", "share", "free", "preempt", "commit"]),
                         st.integers(0, 7), st.integers(1, 9)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(ops, st.integers(1, 5), st.booleans())
def test_no_block_leaked_or_freed_twice(operations, block_size, prefix):
    bm = BlockManager(num_blocks=12, block_size=block_size, prefix_caching=prefix)
    live: list[Sequence] = []
    for op, pick, n in operations:
        target = live[pick % len(live)] if live else None
        if op == "new":
            s = seq([pick % 3] * (n + 1))
            bm.allocate(s)
            live.append(s)
        elif target is None:
            continue
        elif op == "append" and target.num_computed + n <= target.num_tokens + 8 and bm.can_append(target, n):
            bm.may_append(target, n)
            target.token_ids += [pick] * max(0, target.num_computed + n - target.num_tokens)
            target.num_computed += n
        elif op == "speculate" and bm.can_append(target, n):    # n - 1 drafts; pick % n of them accepted
            bm.may_append(target, n)
            accepted = pick % n
            target.num_computed += 1 + accepted if target.num_computed < target.num_tokens else accepted
            target.token_ids += [pick] * max(0, target.num_computed - target.num_tokens)
            bm.commit(target)
            bm.trim(target)
            assert len(target.block_table) == -(-target.num_computed // block_size)
        elif op == "share":                  # a new sequence with target's tokens attaches its cached blocks
            child = seq(list(target.token_ids))
            bm.allocate(child)
            live.append(child)
        elif op in ("free", "preempt"):
            bm.deallocate(target)
            if op == "free":
                live.remove(target)
        elif op == "commit":
            bm.commit(target)
        check_invariants(bm, live)
    for s in live:
        bm.deallocate(s)
    assert bm.num_free == len(bm.blocks)
