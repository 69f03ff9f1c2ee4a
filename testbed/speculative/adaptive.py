"""Draft length controllers: fixed k, or k adapted to the running acceptance.

The k-th draft token is used only when all k tokens are accepted, probability α^k if each is
accepted independently with probability α. It costs c (one draft step, relative to a target
step) plus v (one more position in the verify forward). So drafting it pays while α^k > c + v:

    k* = floor(log(c + v) / log α),  clamped to [min, max]

α is estimated from the running counts as accepted / (accepted + rejections) (the maximum
likelihood estimate for geometric runs cut at k), with exponential decay so it tracks the text;
c from the measured draft and verify times; v is a constant (a CPU verify forward over 4–21
tokens cost ~2.1x a one-token step: ~0.1 per extra token, DESIGN §5).

    ctl = AdaptiveK(k=5, k_min=1, k_max=16)
    ctl.update(proposed=5, accepted=5, draft_s=0.001, verify_s=0.03); ctl.k   # -> larger
"""
import math

VERIFY_COST_PER_TOKEN = 0.1


class Controller:
    """Fixed draft length."""

    def __init__(self, k: int):
        self.k = k

    def update(self, proposed: int, accepted: int, draft_s: float, verify_s: float) -> None:
        """Called after every verification step."""


class AdaptiveK(Controller):
    def __init__(self, k: int, k_min: int, k_max: int, min_gain: float | None = None, decay: float = 0.9):
        super().__init__(min(max(k, k_min), k_max))
        self.k_min, self.k_max = k_min, k_max
        self.min_gain = min_gain           # fixed c + v; None: measure c
        self.decay = decay
        self.accepted = self.rejected = 0.0
        self.draft_per_token = self.verify_per_step = 0.0

    def update(self, proposed: int, accepted: int, draft_s: float, verify_s: float) -> None:
        if proposed == 0:
            return
        d = self.decay
        self.accepted = d * self.accepted + accepted
        self.rejected = d * self.rejected + (accepted < proposed)
        self.draft_per_token = d * self.draft_per_token + (1 - d) * draft_s / proposed
        self.verify_per_step = d * self.verify_per_step + (1 - d) * verify_s
        self.k = best_k(self.alpha, self.threshold, self.k_min, self.k_max)

    @property
    def alpha(self) -> float:
        seen = self.accepted + self.rejected
        return self.accepted / seen if seen else 0.0

    @property
    def threshold(self) -> float:
        if self.min_gain is not None:
            return self.min_gain
        c = self.draft_per_token / self.verify_per_step if self.verify_per_step else 0.0
        return min(c + VERIFY_COST_PER_TOKEN, 0.99)


def best_k(alpha: float, threshold: float, k_min: int, k_max: int) -> int:
    """Largest k with alpha**k >= threshold, clamped to [k_min, k_max]."""
    if alpha >= 1.0:
        return k_max
    if alpha <= 0.0:
        return k_min
    return max(k_min, min(k_max, math.floor(math.log(threshold) / math.log(alpha))))
