"""`--set key=value` overrides and the fallback merge, applied to the raw YAML mapping before validation.

    raw = with_overrides(raw, ["workload.limit=8"], device="cpu")
    merged = merge(raw, raw["fallback"])
"""
import copy

from testbed.errors import UserError
from testbed.safe_yaml import load_yaml


def with_overrides(raw: dict, overrides: list[str], device: str | None) -> dict:
    out = copy.deepcopy(raw)
    for ov in overrides:
        apply_override(out, ov)
    if device:
        out["device"] = device
    return out


def apply_override(raw: dict, text: str) -> None:
    if "=" not in text:
        raise UserError(f"--set {text!r}: expected key=value", "e.g. --set workload.limit=8")
    key, _, value = text.partition("=")
    if not value.strip():       # an empty value used to load as null and silently drop the key
        raise UserError(f"--set {text!r}: no value after '='", f"give a value, e.g. --set {key.strip()}=8, "
                        f"or --set {key.strip()}=null to unset it")
    node = raw
    parts = key.strip().split(".")
    if not all(parts):          # "=3", "a..b=3": the empty name used to surface as ": unknown key"
        raise UserError(f"--set {text!r}: an empty key name in {key.strip()!r}",
                        "name the key as a dotted path, e.g. --set workload.limit=8")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise UserError(f"--set {key}: {p} is not a mapping", "set a leaf key such as workload.limit")
    node[parts[-1]] = load_yaml(value, f"--set {key}", "give a YAML value, e.g. --set workload.limit=8 "
                                                         "or --set workload.categories=[lookup]")


def merge(base: dict, over: dict) -> dict:
    """Deep-merge `over` into `base`; lists, scalars and model specs (a mapping with an `id`) replace
    whole, so a fallback's model never inherits the dtype or revision of the model it replaces."""
    out = dict(base)
    for k, v in over.items():
        nested = isinstance(v, dict) and isinstance(out.get(k), dict) and "id" not in v
        out[k] = merge(out[k], v) if nested else v
    return out
