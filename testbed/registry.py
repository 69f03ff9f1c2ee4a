"""Name -> class registries for the pluggable axes (engines, scorers, context steps, proposers, routers).

The runner looks strategies up here and never branches on their names.
"""
from difflib import get_close_matches
from typing import Callable, Generic, TypeVar

from testbed.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj
        return deco

    def get(self, name: str, where: str | None = None) -> T:
        if name not in self._items:
            near = get_close_matches(name, self._items, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            at = f"{where}: " if where else ""
            raise UserError(f"{at}unknown {self.kind} {name!r}{hint}",
                            f"use one of: {', '.join(sorted(self._items))}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items
