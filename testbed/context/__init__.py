"""The context layer: what the model sees. Steps (retrieve, dedup, rerank, extract, prune, budget,
gold_only) share one signature, (query, chunks) -> (chunks, stats), and compose in an arm's
`context: {steps: [...]}` section (pipeline.py); audit.py measures what each step did.
"""
