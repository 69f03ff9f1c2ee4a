"""A pydantic ValidationError as the lines a user reads: each names its YAML path and what is wrong.

    raise UserError(f"{source}: invalid config\n" + describe_errors(err, ExperimentConfig), fix)
"""
from difflib import get_close_matches
from typing import Any

from pydantic import BaseModel, ValidationError


def describe_errors(err: ValidationError, model: type[BaseModel], prefix: str = "") -> str:
    """One indented line per error: `prefix.loc: what` (unknown keys get the nearest known name)."""
    lines = []
    for e in err.errors():
        inner = tuple(e.get("ctx", {}).get("path", ()))   # a check inside a free-form value names its own path
        loc = ".".join(str(p) for p in ((prefix,) if prefix else ()) + tuple(e["loc"]) + inner)
        if e["type"] == "extra_forbidden":
            key = str(e["loc"][-1])
            near = get_close_matches(key, _known_keys(model, e["loc"][:-1]), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            lines.append(f"  {loc or repr(key)}: unknown key{hint}")     # a key "" has an empty path
        elif e["type"] == "missing":
            lines.append(f"  {loc}: required field is missing")
        else:
            got = e.get("input")
            shown = f" (got {got!r})" if not isinstance(got, (dict, list)) else ""
            where = f"{loc}: " if loc else ""      # a check across fields (baseline) names its fields itself
            lines.append(f"  {where}{e['msg'].removeprefix('Value error, ')}{shown}")
    return "\n".join(lines)


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    cur: Any = model
    for part in loc:
        field = getattr(cur, "model_fields", {}).get(part) if isinstance(part, str) else None
        ann = field.annotation if field else None
        cur = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if cur is None:
            return []
    return list(getattr(cur, "model_fields", {}))
