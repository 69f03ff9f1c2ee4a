"""Speculative decoding: proposers behind one interface, one exact verification rule, a decode loop.

    arms:
      ngram: {engine: hf, speculative: {method: prompt_lookup, ngram: 3, num_draft_tokens: 10}}

`config.SpeculativeConfig` (the arm's `speculative:` section) builds a `decoder.SpeculativeDecoder`
that the hf engine runs in place of `generate`.
"""
