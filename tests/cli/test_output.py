"""Output formatting as az prints it: -o json|jsonc|table|tsv|yaml|none and --query."""

from __future__ import annotations

import json
from collections import OrderedDict

import pytest
import typer
from typer.testing import CliRunner

from dockyard.cli import output
from dockyard.cli.console import CLIError, UsageError
from dockyard.cli.output import command, render

GROUPS = [
    {"id": "/subscriptions/s/resourceGroups/rg1", "name": "rg1", "location": "eastus",
     "properties": {"provisioningState": "Succeeded"}, "tags": {"a": "b"}, "type": "Microsoft.Resources/resourceGroups"},
    {"id": "/subscriptions/s/resourceGroups/another", "name": "another", "location": "westeurope",
     "properties": {"provisioningState": "Succeeded"}, "tags": {}, "type": "Microsoft.Resources/resourceGroups"},
]


def test_json_is_sorted_two_space_indented_and_keeps_unicode():
    text = render({"b": 1, "a": ["x", {"d": None, "c": True}], "u": "héllo"})
    assert text == (
        '{\n  "a": [\n    "x",\n    {\n      "c": true,\n      "d": null\n    }\n  ],\n  "b": 1,\n  "u": "héllo"\n}\n'
    )


def test_json_of_scalars_and_lists():
    assert render("x") == '"x"\n'
    assert render([]) == "[]\n"
    assert render(False) == "false\n"


def test_query_projection_and_filter():
    assert json.loads(render(GROUPS, query="[].name")) == ["rg1", "another"]
    assert json.loads(render(GROUPS, query="[?location=='eastus'].name | [0]")) == "rg1"
    assert render(GROUPS, "tsv", query="[].{n:name, l:location}") == "rg1\teastus\nanother\twesteurope\n"


def test_query_multiselect_keeps_its_order_in_tsv_and_table():
    assert render(GROUPS[0], "tsv", query="{z:name, a:location}") == "rg1\teastus\n"
    table = render(GROUPS, "table", query="[].{Zeta:name, Alpha:location}")
    assert table.splitlines()[0].split() == ["Zeta", "Alpha"]


def test_invalid_query_is_a_usage_error():
    with pytest.raises(UsageError) as info:
        render(GROUPS, query="[bad")
    assert info.value.exit_code == 2
    assert "--query" in info.value.line()


def test_invalid_output_is_a_usage_error():
    with pytest.raises(UsageError):
        render(GROUPS, "xml")


def test_table_auto_columns_like_knack():
    text = render(GROUPS, "table")
    lines = text.splitlines()
    # sorted keys, first letter capitalised; id/type and nested values skipped
    assert lines[0].split() == ["Location", "Name"]
    assert lines[1] == "----------  -------"  # at least header + 2 wide
    assert lines[2].split() == ["eastus", "rg1"]
    assert lines[3] == "westeurope  another"
    assert all(line == line.rstrip() for line in lines)


def test_table_of_scalars_and_booleans():
    assert render(["a", "bb"], "table") == "Result\n--------\na\nbb\n"
    assert render({"flag": True, "n": 5}, "table").splitlines()[2].split() == ["True", "5"]


def test_table_transform_applies_without_query_only():
    def transform(result):
        return [OrderedDict([("NAME", g["name"]), ("STATUS", g["properties"]["provisioningState"])]) for g in result]

    assert render(GROUPS, "table", table=transform).splitlines()[0].split() == ["NAME", "STATUS"]
    assert render(GROUPS, "table", query="[].{L:location}", table=transform).splitlines()[0] == "L"


def test_tsv_like_knack():
    item = {"b": [1, 2, 3], "a": "x", "c": {"nested": 1}, "d": None, "e": False}
    assert render(item, "tsv") == "x\t3\t\tNone\tFalse\n"
    assert render(["one", "two"], "tsv") == "one\ntwo\n"
    assert render(True, "tsv") == "true\n"


def test_yaml_and_none():
    assert render({"b": 1, "a": [1]}, "yaml") == "a:\n- 1\nb: 1\n"
    assert render({"b": 1}, "yaml", query="{x: b}") == "x: 1\n"
    assert render(GROUPS, "none") == ""


def test_jsonc_without_a_terminal_is_plain_json():
    assert render({"a": 1}, "jsonc") == render({"a": 1}, "json")


# ------------------------------------------------------------------ the command decorator

app = typer.Typer()


@command(app, "show", subscription=False)
def _show(fail: bool = False, usage: bool = False) -> object:
    if fail:
        raise CLIError("The thing was not found.", "ResourceNotFound")
    if usage:
        raise UsageError("usage error: --a | --b")
    return {"name": "thing", "size": 3}


@command(app, "nothing")
def _nothing() -> None:
    return None


def test_command_renders_and_takes_global_arguments():
    runner = CliRunner()
    result = runner.invoke(app, ["show", "-o", "tsv", "--query", "{n: name, s: size}"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "thing\t3\n"
    assert runner.invoke(app, ["show"]).stdout == '{\n  "name": "thing",\n  "size": 3\n}\n'


def test_command_errors_are_one_line_with_exit_codes():
    runner = CliRunner()
    failed = runner.invoke(app, ["show", "--fail"])
    assert failed.exit_code == 1
    assert failed.stderr == "ERROR: (ResourceNotFound) The thing was not found.\n"
    usage = runner.invoke(app, ["show", "--usage"])
    assert usage.exit_code == 2
    assert usage.stderr.startswith("ERROR: usage error")
    bad_query = runner.invoke(app, ["show", "--query", "[["])
    assert bad_query.exit_code == 2
    assert runner.invoke(app, ["show", "-o", "bogus"]).exit_code == 2


def test_none_prints_nothing():
    result = CliRunner().invoke(app, ["nothing", "--subscription", "x"])
    assert result.exit_code == 0 and result.stdout == ""


def test_formats_listed():
    assert output.FORMATS == ("json", "jsonc", "table", "tsv", "yaml", "yamlc", "none")
