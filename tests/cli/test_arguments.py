"""az's argument conventions: multi-word options and bare three-state flags."""

from __future__ import annotations

import pytest

from dockyard.cli import arguments
from dockyard.cli.arguments import SEP, rewrite
from dockyard.cli.console import UsageError


def test_multi_value_options_become_one_token():
    argv = ["group", "create", "-n", "g", "--tags", "a=b", "c=d", "-l", "eastus"]
    assert rewrite(argv) == ["group", "create", "-n", "g", "--tags", f"a=b{SEP}c=d", "-l", "eastus"]
    assert arguments.tags(rewrite(argv)[5]) == {"a": "b", "c": "d"}


def test_repeatable_repository_groups():
    argv = ["--repository", "hello", "content/read", "metadata/read", "--repository", "samples/*", "content/read"]
    out = rewrite(argv)
    assert arguments.groups([out[1], out[3]]) == [["hello", "content/read", "metadata/read"], ["samples/*", "content/read"]]


def test_single_value_use_is_unchanged():
    assert rewrite(["--repository", "hello", "-n", "reg"]) == ["--repository", "hello", "-n", "reg"]
    assert rewrite(["--tags=a=b", "c"]) == ["--tags", f"a=b{SEP}c"]


def test_empty_tags_clear():
    out = rewrite(["--tags", ""])
    assert arguments.tags(out[1]) == {}
    assert rewrite(["--tags", "-o", "json"]) == ["--tags", "", "-o", "json"]
    assert arguments.tags(None) is None


def test_three_state_flags():
    assert rewrite(["--admin-enabled"]) == ["--admin-enabled", "true"]
    assert rewrite(["--admin-enabled", "-o", "json"]) == ["--admin-enabled", "true", "-o", "json"]
    assert rewrite(["--admin-enabled", "false"]) == ["--admin-enabled", "false"]
    assert rewrite(["--admin-enabled=false"]) == ["--admin-enabled=false"]
    assert arguments.boolean("True", "--x") is True
    assert arguments.boolean("false", "--x") is False
    with pytest.raises(UsageError):
        arguments.boolean("maybe", "--x")


def test_double_dash_stops_rewriting():
    assert rewrite(["--", "--tags", "a", "b"]) == ["--", "--tags", "a", "b"]


def test_choice_is_case_insensitive():
    assert arguments.choice("basic", "--sku", ("Basic", "Standard")) == "Basic"
    with pytest.raises(UsageError):
        arguments.choice("Gold", "--sku", ("Basic", "Standard"))
