"""az's argument conventions that click (under typer) has no notion of.

- Multi-value options: az writes ``--tags a=b c=d``, ``--scopes S1 S2`` and
  ``--repository REPO ACTION ACTION`` (repeatable), taking every following word up to the
  next option. :func:`rewrite` turns each such run into one token joined by ``SEP``;
  commands split it back with :func:`values` / :func:`groups`.
- Three-state flags: ``--admin-enabled`` alone means true, ``--admin-enabled false`` false.
  :func:`rewrite` adds the implied ``true``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from dockyard.cli.console import UsageError

SEP = "\x1f"

# options that take one or more words (az: nargs='+' / nargs='*')
MULTI_VALUE = frozenset({
    "--tags", "--scopes", "--repository", "--add-repository", "--remove-repository", "--ids",
})
# options that take true/false, and mean true when given alone (az: get_three_state_flag)
THREE_STATE = frozenset({
    "--admin-enabled", "--anonymous-pull-enabled", "--public-network-enabled",
    "--allow-trusted-services", "--zone-redundancy", "--data-endpoint-enabled",
    "--delete-enabled", "--write-enabled", "--list-enabled", "--read-enabled",
})
_TRUE = ("true", "yes", "1", "on", "enabled")
_FALSE = ("false", "no", "0", "off", "disabled")
_NUMBER = re.compile(r"^-\d")


def _is_option(token: str) -> bool:
    return token.startswith("-") and len(token) > 1 and not _NUMBER.match(token)


def rewrite(argv: Sequence[str]) -> list[str]:
    """az-style argv → argv click parses; see the module docstring."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            out.extend(argv[i:])
            break
        name, eq, inline = token.partition("=")
        if name in MULTI_VALUE:
            words = [inline] if eq else []
            i += 1
            while i < len(argv) and not _is_option(argv[i]):
                words.append(argv[i])
                i += 1
            out += [name, SEP.join(words)]
            continue
        if name in THREE_STATE and not eq:
            following = argv[i + 1] if i + 1 < len(argv) else None
            if following is None or following.lower() not in _TRUE + _FALSE:
                out += [token, "true"]
                i += 1
                continue
        out.append(token)
        i += 1
    return out


def values(raw: Iterable[str] | str | None) -> list[str]:
    """The words of a multi-value option (all its occurrences), without empty ones."""
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [raw]
    return [word for item in raw for word in item.split(SEP) if word != ""]


def groups(raw: Iterable[str] | None) -> list[list[str]]:
    """Each occurrence of a repeatable multi-value option as its list of words."""
    return [[w for w in item.split(SEP) if w != ""] for item in (raw or [])]


def tags(raw: Iterable[str] | str | None) -> dict[str, str] | None:
    """``--tags a=b c`` → {"a": "b", "c": ""}; ``--tags ""`` → {} (clears); absent → None."""
    if raw is None:
        return None
    result: dict[str, str] = {}
    for word in values(raw):
        key, _, value = word.partition("=")
        if not key:
            raise UsageError(f"usage error: invalid tag '{word}': use KEY[=VALUE]")
        result[key] = value
    return result


def boolean(value: str | None, flag: str) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise UsageError(f"argument {flag}: invalid choice: '{value}' (choose from 'false', 'true')")


def choice(value: str | None, flag: str, choices: Sequence[str]) -> str | None:
    """Case-insensitive choice; returns the canonical spelling."""
    if value is None:
        return None
    for option in choices:
        if option.lower() == value.lower():
            return option
    listed = ", ".join(f"'{c}'" for c in choices)
    raise UsageError(f"argument {flag}: invalid choice: '{value}' (choose from {listed})")
