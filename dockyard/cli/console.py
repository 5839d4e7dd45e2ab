"""What the client CLI says on stderr: errors, warnings, debug traces, confirmations.

Errors end a command with one line, ``ERROR: (Code) message``, and exit code 1 (2 for usage
errors), as az does. ``state`` holds the per-invocation switches every command takes
(``--debug``, ``--only-show-errors``, ``--subscription``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


class CLIError(Exception):
    """A failure the user should see as one line; ``code`` is shown as ``(Code)`` when known."""

    exit_code = 1

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def line(self) -> str:
        return f"ERROR: ({self.code}) {self.message}" if self.code else f"ERROR: {self.message}"


class UsageError(CLIError):
    """Flags that don't fit together; exit code 2 as for argparse/click usage errors."""

    exit_code = 2


class NotFoundError(CLIError):
    pass


class Cancelled(Exception):
    """The user answered no to a confirmation: stop quietly with exit code 0, as az does."""


@dataclass
class State:
    debug: bool = False
    only_show_errors: bool = False
    subscription: str | None = None


state = State()


def warn(message: str) -> None:
    if not state.only_show_errors:
        print(f"WARNING: {message}", file=sys.stderr)


def debug(message: str) -> None:
    if state.debug:
        print(f"DEBUG: {message}", file=sys.stderr)


def confirm(message: str, yes: bool) -> None:
    """Ask before a destructive operation unless --yes; refuse without a terminal, as az does."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("Unable to prompt for confirmation as no tty available. Use --yes.")
    answer = input(f"{message} (y/n): ").strip().lower()
    if answer not in ("y", "yes"):
        raise Cancelled()
