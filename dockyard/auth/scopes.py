"""Docker token scopes: ``repository:<name>:<actions>`` and ``registry:catalog:*``."""

from __future__ import annotations

from dataclasses import dataclass

REPOSITORY_ACTIONS = ("pull", "push", "delete", "metadata_read", "metadata_write")


@dataclass(frozen=True, slots=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def as_claim(self) -> dict:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def parse_scopes(values: list[str]) -> list[Scope]:
    """Parse scope parameters; each may hold several space-separated scopes. Malformed ones are skipped."""
    scopes: list[Scope] = []
    for value in values:
        for item in value.split():
            kind, sep, rest = item.partition(":")
            name, sep2, actions = rest.rpartition(":")
            if not sep or not sep2 or not name:
                continue
            kind = kind.split("(", 1)[0]
            wanted = tuple(dict.fromkeys(a for a in actions.split(",") if a))
            if kind in ("repository", "registry") and wanted:
                scopes.append(Scope(kind, name, wanted))
    return scopes


def allows(granted_actions: list[str] | tuple[str, ...] | set[str], action: str) -> bool:
    return action in granted_actions or "*" in granted_actions
