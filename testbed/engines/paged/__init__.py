"""Continuous batching over a paged KV cache: block manager, scheduler, model runner, engine."""
