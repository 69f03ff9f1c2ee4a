"""Scheduler on CPU with fake runner outputs: budgets, chunked prefill, mixed steps, preemption."""
from testbed.engines.paged.block_manager import BlockManager
from testbed.engines.paged.scheduler import Scheduler, SchedulerConfig
from testbed.engines.paged.sequence import Sequence, SeqStatus
from testbed.request import Request


def make(prompt_len: int, max_new: int = 4, rid: str = "r") -> Sequence:
    return Sequence.from_request(Request(id=rid, prompt_ids=list(range(1, prompt_len + 1)), max_new_tokens=max_new))


def fake_step(sched: Scheduler, token: int = 7):
    """Run one step with a fake runner: every sequence that reaches its end gets `token`."""
    batch = sched.schedule()
    tokens = [token if s.num_computed + n == s.num_tokens else None for s, n in batch.items]
    return batch, sched.postprocess(batch, tokens, now=1.0)


def scheduler(num_blocks=64, block_size=4, **cfg) -> Scheduler:
    return Scheduler(SchedulerConfig(**cfg), BlockManager(num_blocks, block_size, prefix_caching=False))


def test_chunked_prefill_splits_a_long_prompt_by_the_token_budget():
    sched = scheduler(max_num_batched_tokens=8)
    s = make(20)
    sched.add(s)
    sizes = [fake_step(sched)[0].items[0][1] for _ in range(3)]
    assert sizes == [8, 8, 4]
    assert s.request.output_ids == [7]            # the token comes only after the last chunk


def test_without_chunking_a_prompt_waits_for_a_step_with_room():
    sched = scheduler(max_num_batched_tokens=10, chunked_prefill=False)
    a, b = make(2, max_new=3, rid="a"), make(9, rid="b")
    sched.add(a)
    sched.add(b)
    batch, _ = fake_step(sched)
    assert [(s.request.id, n) for s, n in batch.items] == [("a", 2)]
    batch, _ = fake_step(sched)
    assert [(s.request.id, n) for s, n in batch.items] == [("a", 1), ("b", 9)]


def test_decodes_and_a_prefill_share_one_step():
    sched = scheduler(max_num_batched_tokens=6)
    a = make(3, rid="a")
    sched.add(a)
    fake_step(sched)
    sched.add(make(10, rid="b"))
    batch, _ = fake_step(sched)
    assert [(s.request.id, n) for s, n in batch.items] == [("a", 1), ("b", 5)]


def test_max_num_seqs_caps_running():
    sched = scheduler(max_num_seqs=2)
    for i in range(3):
        sched.add(make(3, rid=str(i)))
    batch, _ = fake_step(sched)
    assert len(batch.items) == 2 and len(sched.waiting) == 1


def test_finished_sequences_free_their_blocks():
    sched = scheduler(num_blocks=4, max_num_batched_tokens=64)
    s = make(5, max_new=2)
    sched.add(s)
    fake_step(sched)
    _, finished = fake_step(sched)
    assert finished == [s] and s.status == SeqStatus.FINISHED and s.request.finish_reason == "length"
    assert sched.blocks.num_free == 4 and not sched.has_unfinished()


def test_preemption_recomputes_the_newest_and_keeps_its_tokens():
    sched = scheduler(num_blocks=4, block_size=2, max_num_batched_tokens=64)
    a, b = make(3, max_new=4, rid="a"), make(3, max_new=4, rid="b")
    sched.add(a)
    sched.add(b)
    fake_step(sched)                     # both prefilled: 2 blocks each, all 4 in use
    fake_step(sched)                     # both decode position 3, still inside their 2nd block
    assert sched.blocks.num_free == 0 and sched.stats.preemptions == 0
    batch, _ = fake_step(sched)          # a needs a 3rd block: b, the newest, is preempted
    assert sched.stats.preemptions == 1 and [s.request.id for s, _ in batch.items] == ["a"]
    assert b.status == SeqStatus.WAITING and b.num_computed == 0 and b.block_table == []
    assert b.token_ids == [1, 2, 3, 7, 7] and b.request.output_ids == [7, 7]
    while sched.has_unfinished():
        fake_step(sched)
    assert a.request.output_ids == [7] * 4 and b.request.output_ids == [7] * 4
    assert sched.blocks.num_free == 4


def test_prefix_cache_hits_are_counted_on_admission():
    sched = Scheduler(SchedulerConfig(), BlockManager(16, 4, prefix_caching=True))
    sched.add(make(9, max_new=1, rid="a"))
    fake_step(sched)
    sched.add(make(9, max_new=1, rid="b"))
    batch, _ = fake_step(sched)
    assert batch.items[0][1] == 1                 # 8 of 9 prompt tokens came from the cache
    assert sched.stats.prefix_hit_tokens == 8 and sched.stats.prefix_query_tokens == 18


def test_abort_frees_a_running_sequence():
    sched = scheduler(num_blocks=8)
    a, b = make(6, rid="a"), make(6, rid="b")
    sched.add(a)
    sched.add(b)
    fake_step(sched)
    assert sched.abort("a") is a and sched.blocks.num_free == 6 and sched.running == [b]
    assert sched.abort("zzz") is None


def test_watermark_keeps_headroom_when_others_run_but_never_blocks_a_lone_request():
    sched = scheduler(num_blocks=6, block_size=4, watermark_blocks=3)
    a, b = make(8, rid="a"), make(8, rid="b")
    sched.add(a)
    sched.add(b)
    batch, _ = fake_step(sched)          # a takes 2 blocks; b would leave 2 < 3 free
    assert [s.request.id for s, _ in batch.items] == ["a"] and list(sched.waiting) == [b]
    lone = scheduler(num_blocks=3, block_size=4, watermark_blocks=3)
    lone.add(make(10, rid="c"))
    assert len(fake_step(lone)[0].items) == 1
