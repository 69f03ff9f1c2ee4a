"""The routed engine: one engine per tier behind the engine protocol, and a router in front.

Built by the `routing:` section (testbed/routing), not named in configs: the arm's `engine:`
is the kind each tier runs. A request arrives rendered for the arm's model; it is rendered again
from its chat messages with the chosen tier's tokenizer. A cascade that escalates discards the
answer and sends the request to the next tier, keeping its arrival time, so latency counts both.

Cost: each tier step's seconds are shared evenly by the requests it served (those that got a
token or finished in it; a step that served none, a prefill chunk say, passes its seconds on to
the next step's), so a tier's charges add up to its measured seconds under any batching: exact
per request for batches of one, a fair split for static and continuous batches. A cascade's
confidence comes with the tokens where the tier engine keeps their log-probs (hf), else from a
teacher-forced pass charged on top; at a $/token price only the tokens count. Its self-check
(does the answer give the JSON its request asked for) is a parse, not charged.
"""
import time

from testbed.engines.base import Engine
from testbed.request import Request


def for_tier(routing, req: Request, rank: int) -> Request:
    """`req` rendered for tier `rank`: same id, arrival, stats and messages; that tier's tokens and EOS."""
    text, ids = routing.render(rank, req)
    lm = routing.tiers[rank].lm
    return Request(id=req.id, prompt_ids=ids, prompt_text=text, max_new_tokens=routing.max_new_tokens(rank, req),
                   sampling=req.sampling, arrival_time=req.arrival_time, item_id=req.item_id,
                   category=req.category, eos_token_ids=lm.eos_token_ids, stats=req.stats, messages=req.messages)


class RoutedEngine(Engine):
    def __init__(self, routing, engines: list[Engine]):
        super().__init__(routing.plan.lm, routing.plan.arm.options, {})
        self.routing = routing
        self.router = routing.router
        self.engines = engines
        self.next_engine = 0
        self.in_flight: list[list[Request]] = [[] for _ in engines]    # per tier: submitted, not finished
        self.unpaid = [0.0] * len(engines)                               # per tier: seconds nobody was served in

    def add_request(self, req: Request) -> None:
        req.stats["route"] = {"tier": None, "tier_rank": None, "model": None, "escalated": False,
                              "confidence": None, "format_ok": None, "tiers_tried": []}
        req.stats["cost_usd"] = 0.0
        self._submit(req, self.router.first_tier(req.item_id))

    def _submit(self, req: Request, rank: int) -> None:
        tier = self.routing.tiers[rank]
        route = req.stats["route"]
        route.update(tier=tier.name, tier_rank=rank, model=tier.lm.spec_id)     # confidence: the last measured
        route["tiers_tried"].append(tier.name)
        tier_req = for_tier(self.routing, req, rank)
        self.in_flight[rank].append(tier_req)
        self.engines[rank].add_request(tier_req)

    def has_unfinished(self) -> bool:
        return any(e.has_unfinished() for e in self.engines)

    def step(self) -> list[Request]:
        """Step the next tier engine with work (round robin); escalate or return what it finished."""
        n = len(self.engines)
        for k in range(n):
            rank = (self.next_engine + k) % n
            if self.engines[rank].has_unfinished():
                self.next_engine = (rank + 1) % n
                return self._step_tier(rank)
        return []

    def _step_tier(self, rank: int) -> list[Request]:
        flight = self.in_flight[rank]
        before = [r.num_output_tokens for r in flight]
        t = time.perf_counter()
        done = self.engines[rank].step()
        self.unpaid[rank] += time.perf_counter() - t
        finished = {id(r) for r in done}
        served = [r for r, n in zip(flight, before) if id(r) in finished or r.num_output_tokens > n]
        if served:
            share, self.unpaid[rank] = self.unpaid[rank] / len(served), 0.0
            for r in served:
                r.stats["cost_usd"] += self.routing.tiers[rank].cfg.cost_usd(share, 0)
        self.in_flight[rank] = [r for r in flight if id(r) not in finished]
        out = []
        for req in done:
            seconds = 0.0
            route = req.stats["route"]
            if self.router.needs_confidence and rank < len(self.engines) - 1 and req.status == "finished":
                route["confidence"], csec = self.routing.confidence(rank, req)
                route["format_ok"] = self.routing.follows_format(rank, req)
                seconds += csec
            tokens = req.num_prompt_tokens + req.num_output_tokens
            req.stats["cost_usd"] += self.routing.tiers[rank].cfg.cost_usd(seconds, tokens)
            if self.router.escalate(rank, route["confidence"], route["format_ok"] is not False):
                route["escalated"] = True
                self._submit(req, rank + 1)
            else:
                out.append(req)
        return out

    def stats(self) -> dict[str, float]:
        return {}

    def close(self) -> None:
        for engine in self.engines:
            engine.close()
