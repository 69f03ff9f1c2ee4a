"""A pydantic ValidationError as the lines a user reads: each names its YAML path and what is wrong.

    raise UserError(f"{source}: invalid config\n" + describe_errors(err, ExperimentConfig), fix)
"""
import re
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
            lines.append(f"  {where}{e['msg'].removeprefix('Value error, ')}{shown}{_as_yaml_number(e['type'], got)}")
    return "\n".join(lines)


# what Python reads as a number in exponent form; YAML 1.1 (PyYAML) reads it as text unless the mantissa
# has a dot and the exponent a sign: `1e-9` and `1.0e9` are strings, `1.0e-9` is a float
EXPONENT = re.compile(r"([-+]?)(\d+\.?\d*|\.\d+)[eE]([-+]?)(\d+)")


def _as_yaml_number(kind: str, got: Any) -> str:
    """A hint for a number YAML read as text (`1e-9`): how to write it so that YAML reads a number."""
    m = EXPONENT.fullmatch(got.strip()) if isinstance(got, str) and kind in ("float_type", "int_type") else None
    if m is None:
        return ""
    if kind == "int_type":
        value = float(got)
        return f"; YAML reads {got} as text: write {int(value)}" if value.is_integer() else ""
    sign, mantissa, exp_sign, exp = m.groups()
    mantissa = mantissa + ("0" if mantissa.endswith(".") else "" if "." in mantissa else ".0")
    return f"; YAML reads {got} as text: write {sign}{mantissa}e{exp_sign or '+'}{exp}"


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    cur: Any = model
    for part in loc:
        field = getattr(cur, "model_fields", {}).get(part) if isinstance(part, str) else None
        ann = field.annotation if field else None
        cur = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if cur is None:
            return []
    return list(getattr(cur, "model_fields", {}))
