"""vLLM-client metric definitions beside ours (docs/metrics.md): TTFT from send, client queue,
per-chunk ITL, and vLLM's Poisson schedule (every gap sampled, rescaled to end at n / rate)."""
import numpy as np
import pytest

from testbed.metrics import latency
from testbed.metrics.summary import summarize_arm
from testbed.workloads.arrival import arrival_offsets
from tests.test_metrics import rec


def test_send_based_latencies_split_ttft_into_client_queue_and_service():
    r = rec([1.0, 1.0, 1.5, 2.5], arrival=0.2, send_s=0.6, chunk_times_s=[1.0, 1.5, 2.5, 2.6])
    assert latency.ttft_ms(r) == pytest.approx(800)
    assert latency.client_queue_ms(r) == pytest.approx(400)
    assert latency.ttft_from_send_ms(r) == pytest.approx(400)
    assert latency.client_queue_ms(r) + latency.ttft_from_send_ms(r) == pytest.approx(latency.ttft_ms(r))
    assert latency.e2el_from_send_ms(r) == pytest.approx(1900)
    assert latency.itl_ms(r) == pytest.approx([0, 500, 1000])          # per token: a zero gap inside a chunk
    assert latency.itl_chunk_ms(r) == pytest.approx([500, 1000, 100])   # per chunk, the finish-only chunk too


def test_in_process_records_have_no_send_metrics_and_chunks_are_steps():
    r = rec([1.0, 1.0, 1.5, 2.5], arrival=0.2)
    assert latency.ttft_from_send_ms(r) is None and latency.client_queue_ms(r) is None
    assert latency.itl_chunk_ms(r) == pytest.approx([500, 1000])
    s = summarize_arm([r], wall_s=3.0)
    assert "ttft_from_send_ms_p50" not in s and "client_queue_ms_mean" not in s
    assert s["itl_chunk_ms_p50"] == pytest.approx(750) and s["itl_ms_p50"] == pytest.approx(500)


def vllm_schedule(n, rate, burstiness, seed):
    """vLLM's get_request, restated: np.random.seed, one gamma draw per request, cumsum, rescale."""
    np.random.seed(seed)
    delays = [np.random.gamma(shape=burstiness, scale=1.0 / (rate * burstiness)) for _ in range(n)]
    cum = np.cumsum(delays)
    return (cum * (n / rate) / cum[-1]).tolist()


@pytest.mark.parametrize("burstiness", [1.0, 0.5, 3.0])
def test_poisson_schedule_is_vllms(burstiness):
    ours = arrival_offsets("poisson", 50, rate=4.0, burstiness=burstiness, seed=7)
    assert ours == pytest.approx(vllm_schedule(50, 4.0, burstiness, 7))
    assert ours[-1] == pytest.approx(50 / 4.0) and ours[0] > 0


def test_constant_gaps_for_infinite_burstiness_and_all_at_once_for_infinite_rate():
    assert arrival_offsets("poisson", 4, rate=2.0, burstiness=float("inf")) == pytest.approx([0.5, 1.0, 1.5, 2.0])
    assert arrival_offsets("poisson", 3, rate=float("inf")) == [0.0, 0.0, 0.0]
