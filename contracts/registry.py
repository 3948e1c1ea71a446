"""A named registry of plug-ins, one per kind (strategies, metrics, chunkers, indexes).

Usage::

    strategies = Registry("strategy", entry_point_group="advisor.baselines")

    @strategies.register("prompting")
    class Prompting(Strategy): ...

    strategies.get("promting")   # UnknownName: unknown strategy 'promting'. Did you mean 'prompting'?

Entries register once, in the module that defines them. Third-party packages add entries through the
entry-point group, loaded on first lookup (never when ADVISOR_NO_PLUGINS is set, as in the tests).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownName(KeyError):
    """A lookup of a name that is not registered; the message suggests the nearest names."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


class Registry(Generic[T]):
    def __init__(self, kind: str, entry_point_group: str | None = None):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._group = entry_point_group
        self._plugins_loaded = entry_point_group is None

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._entries[name] = obj
            return obj

        return add

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        if os.environ.get("ADVISOR_NO_PLUGINS"):
            return
        for ep in entry_points(group=self._group):
            if ep.name not in self._entries:
                self.register(ep.name)(ep.load())

    def get(self, name: str) -> T:
        self._load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            names = sorted(self._entries)
            raise UnknownName(
                f"unknown {self.kind} '{name}'.{did_you_mean(name, names)} Known: {', '.join(names)}"
            ) from None

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        self._load_plugins()
        return iter(sorted(self._entries.items()))

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._entries
