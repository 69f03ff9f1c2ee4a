"""A finished request as its line in requests.jsonl (DESIGN §3): ids, token counts, times, text and scores.

    rec = request_record("paged", 0, req, item, t0, lm)    # then the runner adds the baseline match and
                                                            # each section's fields (route, cost_usd), stats

Times are seconds from `t0`, the start of the request's pass, so one pass's records share one clock.
A request that did not finish scores 0 and is not correct; an item without answers is not scored.
"""
from testbed.metrics.quality import score_output
from testbed.request import Request


def request_record(arm: str, repeat: int, req: Request, item, t0: float, lm) -> dict:
    """`lm`: the model that produced the output (a routed arm's tier), for its tokenizer and spec id."""
    text = lm.tokenizer.decode(req.output_ids, skip_special_tokens=True)
    rel = lambda t: None if t is None else t - t0   # noqa: E731
    rec = {"arm": arm, "repeat": repeat, "request_id": req.id, "item_id": item.id, "category": item.category,
           "model": lm.spec_id, "status": "ok" if req.status == "finished" else "failed",
           "error": req.error, "finish_reason": req.finish_reason,
           "prompt_tokens": req.num_prompt_tokens,
           "output_tokens": req.reported_output_tokens or req.num_output_tokens,
           "arrival_s": rel(req.arrival_time),
           "first_token_s": rel(req.token_times[0]) if req.token_times else None,
           "finish_s": rel(req.token_times[-1]) if req.token_times else None,
           "token_times_s": [round(t - t0, 6) for t in req.token_times],
           "send_s": rel(req.send_time), "chunk_times_s": [round(t - t0, 6) for t in req.chunk_times] or None,
           "output_text": text, "output_ids": req.output_ids,
           "answers": item.answers, "scorer": item.scorer}
    rec.update(score_output(item, text) if req.status == "finished"
               else {"scores": {}, "score": 0.0, "correct": False})
    return rec
