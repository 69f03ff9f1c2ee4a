"""Regenerate testbed/assets/tiny-tokenizer.json: a byte-level BPE trained on the golden sets' text.

Random test models (`random:<preset>`) use it so tests need no downloaded tokenizer.

    python scripts/make_tiny_tokenizer.py
"""
import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "testbed" / "workloads" / "golden"
OUT = ROOT / "testbed" / "assets" / "tiny-tokenizer.json"
SPECIALS = ["<|pad|>", "<|im_start|>", "<|im_end|>"]


def corpus():
    for path in sorted(GOLDEN.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            item = json.loads(line)
            yield item["question"]
            yield from (c["text"] for c in item.get("chunks", []))
            yield from item.get("answers", [])
    yield (ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else ""


def main():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2048, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(OUT))
    print(f"wrote {OUT} (vocab {tok.get_vocab_size()})")


if __name__ == "__main__":
    main()
