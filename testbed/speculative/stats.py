"""Speculative decoding counters (vLLM's SpecDecodingStats) and the flat metrics of DESIGN §4.

    spec_acceptance_rate          accepted draft tokens / proposed draft tokens
    spec_mean_accepted_tokens     1 + accepted / drafts (tokens emitted per verification step that had a draft)
    spec_acceptance_per_position  accepted at draft position i / drafts (vLLM's definition)
    spec_draft_time_s, spec_verify_time_s, spec_draft_cost_ratio (draft time per draft token / verify time per step)
"""
from dataclasses import dataclass, field


@dataclass
class SpecStats:
    steps: int = 0                  # verification forwards (with or without a draft)
    drafts: int = 0                 # steps that verified at least one draft token
    draft_tokens: int = 0
    accepted: int = 0
    accepted_per_pos: list[int] = field(default_factory=list)
    draft_s: float = 0.0
    verify_s: float = 0.0
    k_final: list[int] = field(default_factory=list)     # the draft length each request ended with

    def record(self, proposed: int, accepted: int, draft_s: float, verify_s: float) -> None:
        self.steps += 1
        self.drafts += proposed > 0
        self.draft_tokens += proposed
        self.accepted += accepted
        self.draft_s += draft_s
        self.verify_s += verify_s
        self._grow(proposed)
        for i in range(accepted):
            self.accepted_per_pos[i] += 1

    def _grow(self, n: int) -> None:
        self.accepted_per_pos += [0] * (n - len(self.accepted_per_pos))

    def merge(self, other: "SpecStats") -> None:
        for name in ("steps", "drafts", "draft_tokens", "accepted", "draft_s", "verify_s"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self._grow(len(other.accepted_per_pos))
        for i, n in enumerate(other.accepted_per_pos):
            self.accepted_per_pos[i] += n
        self.k_final += other.k_final

    def as_record(self) -> dict:
        """Per-request stats for req.stats["speculative"]."""
        return {"steps": self.steps, "drafts": self.drafts, "draft_tokens": self.draft_tokens,
                "accepted": self.accepted, "accepted_per_pos": list(self.accepted_per_pos),
                "draft_s": round(self.draft_s, 6), "verify_s": round(self.verify_s, 6),
                "num_draft_tokens_final": self.k_final[-1] if self.k_final else None}

    def metrics(self) -> dict:
        """Flat summary metrics; rates are absent when nothing was proposed."""
        out = {"spec_num_steps": self.steps, "spec_num_drafts": self.drafts,
               "spec_num_draft_tokens": self.draft_tokens, "spec_num_accepted_tokens": self.accepted,
               "spec_draft_time_s": self.draft_s, "spec_verify_time_s": self.verify_s}
        if self.draft_tokens:
            out["spec_acceptance_rate"] = self.accepted / self.draft_tokens
            out["spec_draft_cost_ratio"] = (self.draft_s / self.draft_tokens) / (self.verify_s / self.steps)
        if self.drafts:
            out["spec_mean_accepted_tokens"] = 1 + self.accepted / self.drafts
            out["spec_acceptance_per_position"] = [n / self.drafts for n in self.accepted_per_pos]
        if self.k_final:
            out["spec_num_draft_tokens_final"] = sum(self.k_final) / len(self.k_final)
        return out
