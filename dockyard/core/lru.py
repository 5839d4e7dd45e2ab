"""A least-recently-used map bounded by the total size of its values (bytes, rendered pages)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class SizedLRU(Generic[V]):
    """Values are dropped least recently used first while their sizes add up to more than ``total``;
    a value bigger than ``entry`` is never kept. ``size`` measures a value (``len`` by default)."""

    def __init__(self, total: int, entry: int | None = None, size: Callable[[V], int] = len) -> None:
        self.total = total
        self.entry = total if entry is None else entry
        self._size_of = size
        self._values: OrderedDict[Hashable, V] = OrderedDict()
        self.size = 0

    def get(self, key: Hashable) -> V | None:
        value = self._values.get(key)
        if value is not None:
            self._values.move_to_end(key)
        return value

    def put(self, key: Hashable, value: V) -> None:
        size = self._size_of(value)
        if size > self.entry or key in self._values:
            return
        self._values[key] = value
        self.size += size
        while self.size > self.total:
            self.size -= self._size_of(self._values.popitem(last=False)[1])
