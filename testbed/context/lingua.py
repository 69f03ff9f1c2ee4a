"""LLMLingua, the reference prompt compressor (Jiang et al. 2023, PyPI `llmlingua`), as a context step.

    {name: llmlingua, rate: 0.5}                                    # keep about half the context tokens
    {name: llmlingua, rate: 0.4, rank_method: longllmlingua}        # question-aware (LongLLMLingua ranking)

Needs `pip install -e .[llmlingua]`. It runs offline with the arm's own causal LM as its scorer
(SmolLM2-135M by default; the paper used a 7B Llama), beside the project's own `prune`:

- `PromptCompressor.__init__` loads a model by hub name and calls `tiktoken.encoding_for_model(
  "gpt-3.5-turbo")`, which downloads cl100k_base from openaipublic.blob.core.windows.net the first
  time; offline that is a ConnectionError. This step builds the compressor around the model the arm
  already loaded and counts tokens with that model's tokenizer (the tokens that matter here are the
  tier model's, not GPT-3.5's). Nothing else in the token- and context-level paths touches the network.
- `use_sentence_level_filter` would need nltk's punkt data (another download); it stays off.
- llmlingua 0.2.2 slices and unpacks the KV cache as legacy (key, value) tuples per layer, which
  transformers 5 replaced with Cache objects ("too many values to unpack"); `_LegacyCacheModel`
  converts at the model's call boundary.

LLMLingua returns one string; the step maps each compressed piece back to the chunk it came from
(its words are a subsequence of that chunk's words, contexts kept in their original order), so ids
and the context audit still work. As with the project's steps, a ratio applies only above
`min_context_tokens`, and a context never comes back empty (the best chunk is kept whole instead).
"""
import copy
import re
from typing import Any, Literal

from pydantic import Field

from testbed.context.base import STEPS, Step, StepOptions
from testbed.context.compress import MIN_CONTEXT_TOKENS, below_min
from testbed.errors import UserError
from testbed.workloads.items import Chunk

INSTALL_FIX = "pip install -e .[llmlingua]  (or pip install llmlingua)"


class LinguaOptions(StepOptions):
    rate: float = Field(0.5, gt=0.0, le=1.0, description="share of the context tokens to keep")
    rank_method: Literal["llmlingua", "longllmlingua"] = Field(
        "longllmlingua", description="how whole chunks are ranked before token pruning")
    context_level: bool = Field(True, description="drop whole chunks first (coarse), then tokens (fine)")
    min_context_tokens: int = Field(MIN_CONTEXT_TOKENS, ge=0,
                                    description="compress only a context of more than this many tokens (dev split)")


def available() -> bool:
    import importlib.util
    return importlib.util.find_spec("llmlingua") is not None


class _TokenCounter:
    """Stands in for llmlingua's tiktoken encoder (a download): counts with the scorer's own tokenizer."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


class _LegacyCacheModel:
    """The arm's model as llmlingua 0.2.2 expects it: past_key_values in and out as [(key, value)] per layer."""

    def __init__(self, model: Any):
        self.model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def __call__(self, *args, past_key_values=None, **kw):
        from transformers import DynamicCache
        if past_key_values is not None:
            past_key_values = DynamicCache([(k, v) for k, v in past_key_values], config=self.model.config)
        out = self.model(*args, past_key_values=past_key_values, **kw)
        cache = out.past_key_values
        if cache is not None and not isinstance(cache, (list, tuple)):
            out.past_key_values = [(layer.keys, layer.values) for layer in cache.layers]
        return out


def compressor(lm: Any) -> Any:
    """An llmlingua PromptCompressor over the arm's loaded model, built without its downloads."""
    try:
        from llmlingua import PromptCompressor
    except ImportError:
        raise UserError("context step llmlingua: the llmlingua package is not installed", INSTALL_FIX) from None
    pc = PromptCompressor.__new__(PromptCompressor)       # its __init__ downloads: see the module docstring
    tok = copy.deepcopy(lm.tokenizer)                     # llmlingua pads left; the engine's copy stays as is
    tok.padding_side = "left"
    tok.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    pc.__dict__.update(model_name=lm.spec_id, use_llmlingua2=False, retrieval_model=None, retrieval_model_name=None,
                       open_api_config={}, cache_bos_num=10, prefix_bos_num=100, oai_tokenizer=_TokenCounter(tok),
                       model=_LegacyCacheModel(lm.model), tokenizer=tok, device=lm.device, context_idxs=[],
                       max_position_embeddings=lm.max_context)
    return pc


def words(text: str) -> list[str]:
    return re.findall(r"\S+", text)


def is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(any(w == b or w in b for b in it) for w in small)


def map_back(pieces: list[str], chunks: list[Chunk]) -> list[Chunk]:
    """Each compressed piece as a chunk with the id of the (next, in order) chunk whose words it keeps."""
    out, start = [], 0
    for piece in pieces:
        ws = words(piece)
        j = next((j for j in range(start, len(chunks)) if is_subsequence(ws, words(chunks[j].text))), None)
        if j is None:             # tokens merged across a word edge: the chunk sharing the most words
            j = max(range(len(chunks)), key=lambda k: len(set(ws) & set(words(chunks[k].text))))
        out.append(Chunk(chunks[j].id, piece, chunks[j].source))
        start = j + 1
    return out


@STEPS.register("llmlingua")
class LinguaStep(Step):
    Options = LinguaOptions

    def __init__(self, options, lm=None, where="context.steps"):
        super().__init__(options, lm, where)
        if not available():       # checked when the arm is built, before any request
            raise UserError(f"{where}: the llmlingua step needs the llmlingua package, which is not installed",
                            INSTALL_FIX)
        self._pc = None

    def __call__(self, query, chunks, item=None):
        o = self.options
        if not chunks:
            return [], {}
        if (n := below_min(self.lm, chunks, o.min_context_tokens)) is not None:
            return list(chunks), {"passed_whole": n}
        self._pc = self._pc or compressor(self.lm)
        res = self._pc.compress_prompt([c.text for c in chunks], question=query, rate=o.rate,
                                       rank_method=o.rank_method, use_context_level_filter=o.context_level,
                                       condition_in_question="after_condition" if o.rank_method == "longllmlingua"
                                       else "none", reorder_context="original", concate_question=False)
        pieces = [p for p in res["compressed_prompt"].split("\n\n") if p.strip()]
        out = map_back(pieces, chunks) if pieces else [chunks[0]]     # never empty: the top chunk whole
        return out, {"rate": o.rate, "origin_tokens": res.get("origin_tokens"),
                     "compressed_tokens": res.get("compressed_tokens")}
