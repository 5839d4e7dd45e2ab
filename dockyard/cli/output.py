"""Output of every client command, as az does it: ``-o/--output`` and ``--query``.

A command returns plain data (dicts, lists, scalars) or ``None`` (prints nothing).
:func:`command` registers it with typer, adds the global arguments (``--output``,
``--query``, ``--subscription``, ``--debug``, ``--only-show-errors``) and renders the result:

- ``json`` (default): 2-space indent, keys sorted, non-ASCII kept (knack's ``format_json``);
  ``jsonc`` the same, coloured on a terminal.
- ``yaml`` / ``yamlc``; ``none`` prints nothing.
- ``table``: one row per item, the item's scalar fields (sorted, ``id``/``type``/``etag``
  skipped) with the first letter capitalised, or the command's own table transform when
  there is no ``--query``; columns are at least their header + 2 wide, as tabulate's "simple".
- ``tsv``: one line per item, values tab-separated (dict keys sorted unless the dict came from
  a ``--query`` multiselect), lists shown as their length, nested dicts as empty.

``--query`` is JMESPath, applied before formatting; its multiselect hashes keep their order.
Errors (``CLIError``) print one line on stderr and exit 1 (2 for usage errors).
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections import OrderedDict
from collections.abc import Callable
from io import StringIO
from typing import Annotated, Any, Optional

import jmespath
import jmespath.exceptions
import typer

from dockyard.cli import console
from dockyard.cli.console import Cancelled, CLIError, UsageError

FORMATS = ("json", "jsonc", "table", "tsv", "yaml", "yamlc", "none")
_GLOBAL = "Global Arguments"


# ----------------------------------------------------------------------------- formatting


def apply_query(result: Any, query: str | None) -> Any:
    if not query:
        return result
    try:
        expression = jmespath.compile(query)
    except jmespath.exceptions.JMESPathError as exc:
        raise UsageError(f"argument --query: invalid jmespath_type value: {query!r} ({exc})") from None
    try:
        return expression.search(result, jmespath.Options(dict_cls=OrderedDict))
    except jmespath.exceptions.JMESPathError as exc:
        raise CLIError(f"--query {query!r} failed: {exc}") from None


def to_json(result: Any) -> str:
    return json.dumps(result, ensure_ascii=False, indent=2, sort_keys=True, separators=(",", ": ")) + "\n"


def to_yaml(result: Any) -> str:
    import yaml

    return yaml.safe_dump(json.loads(json.dumps(result)), default_flow_style=False, allow_unicode=True)


def _colour(text: str, lexer: str) -> str:
    if not sys.stdout.isatty():
        return text
    try:
        from pygments import highlight
        from pygments.formatters import TerminalFormatter
        from pygments.lexers import get_lexer_by_name
    except ImportError:  # pragma: no cover - pygments comes with rich
        return text
    return highlight(text, get_lexer_by_name(lexer), TerminalFormatter())


_SKIP_KEYS = ("id", "type", "etag")


def _table_row(item: Any, sort_keys: bool) -> OrderedDict:
    row: OrderedDict = OrderedDict()
    if isinstance(item, dict):
        keys = sorted(item) if sort_keys else list(item)
        for key in keys:
            value = item[key]
            if key in _SKIP_KEYS or value is None or isinstance(value, (list, dict, set)):
                continue
            row[key[:1].upper() + key[1:]] = value
    elif isinstance(item, list):
        for index, value in enumerate(item):
            row[f"Column{index + 1}"] = value
    else:
        row["Result"] = item
    return row


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def to_table(result: Any, transform: Callable[[Any], Any] | None = None, query_active: bool = False) -> str:
    if transform is not None and not query_active:
        result = transform(result)
    items = result if isinstance(result, list) else [result]
    rows = [_table_row(item, sort_keys=not query_active and transform is None) for item in items]
    if not rows:
        return "\n"
    headers: list[str] = []
    for row in rows:
        headers += [key for key in row if key not in headers]
    if not headers:
        raise CLIError("Table output unavailable. Use the --query option to specify an appropriate query.")
    cells = [[_cell(row.get(h)) for h in headers] for row in rows]
    widths = [max([len(h) + 2] + [len(line[i]) for line in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    return "\n".join(lines) + "\n"


def _tsv_value(value: Any) -> str:
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, dict):
        return ""
    return value if isinstance(value, str) else str(value)


def to_tsv(result: Any) -> str:
    out = StringIO()
    for item in result if isinstance(result, list) else [result]:
        if isinstance(item, OrderedDict):
            row = list(item.values())
        elif isinstance(item, dict):
            row = [value for _, value in sorted(item.items())]
        elif isinstance(item, list):
            row = item
        elif isinstance(item, bool):
            row = [str(item).lower()]
        else:
            row = [item]
        out.write("\t".join(_tsv_value(v) for v in row) + "\n")
    return out.getvalue()


def render(result: Any, output: str = "json", query: str | None = None,
           table: Callable[[Any], Any] | None = None) -> str:
    """The text a command prints for ``result``."""
    fmt = (output or "json").lower()
    if fmt not in FORMATS:
        raise UsageError(f"argument --output/-o: invalid choice: '{output}' (choose from {', '.join(FORMATS)})")
    result = apply_query(result, query)
    if fmt == "none":
        return ""
    if fmt == "json":
        return to_json(result)
    if fmt == "jsonc":
        return _colour(to_json(result), "json")
    if fmt == "yaml":
        return to_yaml(result)
    if fmt == "yamlc":
        return _colour(to_yaml(result), "yaml")
    if fmt == "tsv":
        return to_tsv(result)
    return to_table(result, table, query_active=bool(query))


# ----------------------------------------------------------------------------- commands


def _global(name: str, default: Any, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


_GLOBAL_PARAMETERS = (
    _global("output", "json", Annotated[str, typer.Option(
        "--output", "-o", metavar="FORMAT", rich_help_panel=_GLOBAL,
        help="Output format: json, jsonc, table, tsv, yaml, yamlc, none.")]),
    _global("query", None, Annotated[Optional[str], typer.Option(
        "--query", metavar="JMESPATH", rich_help_panel=_GLOBAL,
        help="JMESPath query string. See http://jmespath.org/ for examples.")]),
    _global("debug", False, Annotated[bool, typer.Option(
        "--debug", rich_help_panel=_GLOBAL, help="Show every HTTP request and response on stderr.")]),
    _global("only_show_errors", False, Annotated[bool, typer.Option(
        "--only-show-errors", rich_help_panel=_GLOBAL, help="Only show errors, suppressing warnings.")]),
)
_SUBSCRIPTION = _global("subscription", None, Annotated[Optional[str], typer.Option(
    "--subscription", metavar="SUBSCRIPTION", rich_help_panel=_GLOBAL,
    help="Name or ID of subscription. Default: the one `dockyard account set` chose.")])


def run(func: Callable[..., Any], *args: Any, output: str = "json", query: str | None = None,
        table: Callable[[Any], Any] | None = None, **kwargs: Any) -> None:
    """Call a command body, print its rendered result, turn errors into one line + exit code."""
    try:
        if (output or "json").lower() not in FORMATS:
            render(None, output)  # raises the usage error
        if query:
            apply_query(None, query)  # a bad query fails before any request is made
        result = func(*args, **kwargs)
        if result is not None:
            text = render(result, output, query, table)
            if text:
                sys.stdout.write(text)
                sys.stdout.flush()
    except Cancelled:
        raise typer.Exit(0) from None
    except CLIError as exc:
        print(exc.line(), file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("ERROR: interrupted", file=sys.stderr)
        raise typer.Exit(130) from None
    except Exception as exc:  # a bug: say so in one line; --debug shows where
        if console.state.debug:
            import traceback

            traceback.print_exc()
        print(f"ERROR: The command failed with an unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None


def command(app: typer.Typer, name: str, *, table: Callable[[Any], Any] | None = None,
            subscription: bool = True, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func`` as ``name`` on ``app`` with the global arguments and az's output."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(func, eval_str=True)
        extra = [*_GLOBAL_PARAMETERS, _SUBSCRIPTION] if subscription else list(_GLOBAL_PARAMETERS)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            output = kwargs.pop("output")
            query = kwargs.pop("query")
            console.state.debug = kwargs.pop("debug")
            console.state.only_show_errors = kwargs.pop("only_show_errors")
            if subscription:
                console.state.subscription = kwargs.pop("subscription")
            run(func, *args, output=output, query=query, table=table, **kwargs)

        parameters = [*signature.parameters.values(), *extra]
        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        app.command(name, **options)(wrapper)
        return func

    return decorate
