"""Node selection (weir.run.dag.select): a unit tier, no lake, no runs."""

from __future__ import annotations

import pytest

from weir.errors import UsageError
from weir.run.dag import Node, select

# a ─► b ─► c ─► d, and a ─► e (tag weekly)
NODES = {
    "a": Node("a", "pipeline", (), ("daily",), ("silver.a",)),
    "b": Node("b", "model", ("a",), ("daily",), ("gold.b",)),
    "c": Node("c", "model", ("b",), (), ("gold.c",)),
    "d": Node("d", "model", ("c",), (), ("gold.d",)),
    "e": Node("e", "model", ("a",), ("weekly",), ("gold.e",)),
}


@pytest.mark.parametrize(
    ("selectors", "exclude", "expected"),
    [
        ([], [], ["a", "b", "c", "d", "e"]),
        (["c"], [], ["c"]),
        (["+d"], [], ["a", "b", "c", "d"]),
        (["1+d"], [], ["c", "d"]),
        (["2+d"], [], ["b", "c", "d"]),
        (["a+"], [], ["a", "b", "c", "d", "e"]),
        (["a+1"], [], ["a", "b", "e"]),
        (["1+c+1"], [], ["b", "c", "d"]),
        (["tag:daily+1"], [], ["a", "b", "c", "e"]),
        (["a+"], ["c+"], ["a", "b", "e"]),
        ([], ["tag:weekly"], ["a", "b", "c", "d"]),
        (["+d"], ["a"], ["b", "c", "d"]),
        (["b,e"], [], ["b", "e"]),
    ],
)
def test_select(selectors: list[str], exclude: list[str], expected: list[str]) -> None:
    assert select(NODES, selectors, exclude) == expected


@pytest.mark.parametrize(
    ("selectors", "exclude", "message"),
    [
        (["x"], [], "nothing named 'x'"),
        (["tag:dialy"], [], "did you mean 'daily'?"),
        (["a"], ["a"], "the selection is empty"),
        (["a++"], [], "cannot read the selector 'a++'"),
        (["c"], ["zz"], "nothing named 'zz'"),
    ],
)
def test_bad_selections_are_usage_errors(
    selectors: list[str], exclude: list[str], message: str
) -> None:
    with pytest.raises(UsageError) as info:
        select(NODES, selectors, exclude)
    assert message in str(info.value)


def test_state_modified_composes_with_the_graph_operators_and_exclude() -> None:
    calls: list[int] = []

    def modified() -> set[str]:
        calls.append(1)
        return {"b"}

    def pick(selectors: list[str], exclude: tuple[str, ...] = ()) -> list[str]:
        return select(NODES, selectors, exclude, modified=modified)

    assert pick(["state:modified"]) == ["b"]
    assert pick(["state:modified+"]) == ["b", "c", "d"]
    assert pick(["+state:modified"]) == ["a", "b"]
    assert pick(["state:modified+1", "e"]) == ["b", "c", "e"]
    assert pick(["a+"], ("state:modified+",)) == ["a", "e"]
    assert select(NODES, ["state:modified", "b+", "state:modified+"], modified=modified) == [
        "b",
        "c",
        "d",
    ]
    assert len(calls) == 6  # once per selection, however many selectors use it
    assert select(NODES, ["state:modified"], ["e"], modified=set) == []  # nothing changed


@pytest.mark.parametrize(
    ("selector", "message", "hint"),
    [
        (
            "state:modifed",
            "unknown state selector 'state:modifed'",
            "did you mean 'state:modified'?",
        ),
        ("state:new", "unknown state selector 'state:new'", "state:modified"),
    ],
)
def test_unknown_state_selectors_are_usage_errors(selector: str, message: str, hint: str) -> None:
    with pytest.raises(UsageError) as info:
        select(NODES, [selector], modified=set)
    assert message in info.value.message and hint in (info.value.hint or "")


def test_state_modified_without_the_project_state_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="state:modified needs the project's tables"):
        select(NODES, ["state:modified"])
