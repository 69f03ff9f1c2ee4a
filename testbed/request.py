"""A request carries its own state: prompt, output tokens, per-token timestamps, status, stats.

Times are `time.perf_counter()` seconds; the record converts them to seconds from the arm's start.
"""
from dataclasses import dataclass, field
from typing import Any

# Below this temperature sampling is greedy: logits / 1e-300 overflow to inf and softmax to NaN, so
# such a request would make the engine raise (vLLM uses the same 1e-5 cut-off).
GREEDY_BELOW = 1e-5
SEED_LIMIT = 2 ** 63                  # seeds lie in [0, 2^63): torch.Generator.manual_seed takes no more


@dataclass
class SamplingParams:
    temperature: float = 0.0          # below GREEDY_BELOW -> greedy
    top_p: float = 1.0
    top_k: int = 0                    # 0 -> off
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW


@dataclass
class Request:
    id: str
    prompt_ids: list[int]
    max_new_tokens: int
    sampling: SamplingParams = field(default_factory=SamplingParams)
    arrival_time: float = 0.0         # scheduled send time (perf_counter); TTFT counts from here
    item_id: str = ""
    category: str = ""
    prompt_text: str = ""
    eos_token_ids: tuple[int, ...] = ()
    messages: list[dict] | None = None   # the chat turns the prompt was rendered from (a routed arm re-renders per tier)
    # state, written by the engine
    status: str = "waiting"           # waiting | running | finished | failed
    output_ids: list[int] = field(default_factory=list)
    token_times: list[float] = field(default_factory=list)   # one per output token
    finish_reason: str | None = None  # stop | length | error
    error: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)      # strategy stats (engine, speculative, context)
    token_logprobs: list[float] | None = None   # each output token's log-prob, where the engine was asked for them
    cancelled: bool = False           # set from any thread when the client went away; engines may stop early
    ignore_eos: bool = False          # generate max_new_tokens whatever the model emits (eos_token_ids is then empty)
    send_time: float | None = None    # when an HTTP client sent it (after its client-side queue); None in process
    chunk_times: list[float] = field(default_factory=list)   # one per streamed chunk (HTTP clients), vLLM's ITL unit
    reported_output_tokens: int | None = None   # the server's count where it differs from the ids we could recover

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self.output_ids)

    def append_tokens(self, token_ids: list[int], now: float) -> bool:
        """Append tokens emitted at `now`; return True when the request is done (EOS or length).

        Tokens after an EOS are dropped; several tokens in one call share one timestamp
        (a speculative step), which is what makes their ITL gaps zero.
        """
        for tok in token_ids:
            self.output_ids.append(tok)
            self.token_times.append(now)
            if tok in self.eos_token_ids:
                self.finish("stop")
                return True
            if len(self.output_ids) >= self.max_new_tokens:
                self.finish("length")
                return True
        return False

    def finish(self, reason: str) -> None:
        self.status = "finished"
        self.finish_reason = reason

    def fail(self, error: str) -> None:
        self.status = "failed"
        self.finish_reason = "error"
        self.error = error

    @property
    def done(self) -> bool:
        return self.status in ("finished", "failed")
