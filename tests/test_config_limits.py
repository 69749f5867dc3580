"""Hostile or broken YAML in any config file is a ConfigError (exit 2) with file:line, fast:
deep nesting, alias bombs, self-referencing aliases, odd tags, bad bytes — never an
internal error, a RecursionError or a MemoryError."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from weir.cli import main
from weir.spec import yamlsrc
from weirtest.projects import write_models

PIPELINE = "name: orders\nowner: me\ncontract: orders\nextract: {source: memory, dataset: orders}\n"


def _bomb(levels: int = 9) -> str:
    """A "billion laughs": each anchor is nine aliases of the one before (9⁹ values)."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _validate(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, float]:
    started = time.perf_counter()
    code = main(["validate", "--project", str(root)])
    elapsed = time.perf_counter() - started
    return code, capsys.readouterr().err, elapsed


def _assert_config_error(code: int, err: str, where: str) -> None:
    assert code == 2, err
    assert where in err, err
    assert "internal error" not in err and "Traceback" not in err


HOSTILE = [
    ("nested lists", PIPELINE + "tags: " + "[" * 5000 + "]" * 5000 + "\n", 5, "nested deeper"),
    ("nested maps", PIPELINE + "tags: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", 5, "deeper"),
    ("alias bomb", _bomb() + "tags: *a8\n" + PIPELINE, 6, "expands the file"),
    ("self alias", PIPELINE + "tags: &x [a, *x]\n", 5, "alias *x contains itself"),
    ("duplicate key", PIPELINE + "owner: you\n", 5, "key 'owner' appears twice"),
    ("binary tag", PIPELINE + "description: !!binary aGk=\n", 5, "tag !!binary"),
    ("python tag", PIPELINE + "description: !!python/name:os.system x\n", 5, "tag !!python"),
    ("bad timestamp", PIPELINE + "description: !!timestamp soon\n", 5, "not a valid"),
    ("control char", PIPELINE + "description: a\x07b\n", 5, "control character U+0007"),
]


@pytest.mark.parametrize(("name", "text", "line", "words"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_pipeline_yaml_is_a_config_error(
    project_dir: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str,
    line: int,
    words: str,
) -> None:
    root = project_dir()
    (root / "pipelines" / "orders.yml").write_text(text)
    code, err, elapsed = _validate(root, capsys)
    _assert_config_error(code, err, f"orders.yml:{line}:")
    assert words in err
    assert elapsed < 5, f"{name} took {elapsed:.1f}s"  # was 36 s and a MemoryError


def test_invalid_utf8_names_its_line(
    project_dir: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project_dir()
    (root / "pipelines" / "orders.yml").write_bytes(PIPELINE.encode() + b"description: \xfe\xff\n")
    code, err, _ = _validate(root, capsys)
    _assert_config_error(code, err, "orders.yml:5:")
    assert "not valid UTF-8" in err


@pytest.mark.parametrize("where", ["weir.yml", "contract", "header", "sidecar"])
def test_limits_hold_for_every_config_file(
    project_dir: Callable[..., Path], capsys: pytest.CaptureFixture[str], where: str
) -> None:
    root = project_dir()
    bomb = _bomb() + "tags: *a8\n"
    deep = "tags: " + "[" * 3000 + "]" * 3000 + "\n"
    if where == "weir.yml":
        (root / "weir.yml").write_text("name: test\n" + bomb)
        expected = "weir.yml:7:"  # the first anchor past the limit: a5, line 6 of the bomb
    elif where == "contract":
        path = root / "contracts" / "orders.yml"
        path.write_text(path.read_text() + deep)
        expected = f"orders.yml:{len(path.read_text().splitlines())}:"
    elif where == "header":
        write_models(root, {"m": "/* weir\nmaterialized: table\n" + bomb + "*/\nSELECT 1 AS x"})
        expected = "m.sql:8:"  # the header's YAML starts on the file's second line
    else:
        write_models(root, {"m": "SELECT 1 AS x"})
        (root / "models" / "m.yml").write_text(deep)
        expected = "m.yml:1:"
    code, err, elapsed = _validate(root, capsys)
    _assert_config_error(code, err, expected)
    assert elapsed < 5


def test_aliases_within_the_limits_still_work(
    project_dir: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Sharing a value with an anchor is fine; only multiplication past MAX_NODES is not."""
    root = project_dir()
    (root / "pipelines" / "orders.yml").write_text(
        PIPELINE.replace("owner: me", "owner: &who me") + "description: *who\n"
    )
    code, err, _ = _validate(root, capsys)
    assert code == 0, err
    assert yamlsrc.MAX_DEPTH >= 16 and yamlsrc.MAX_NODES >= 10_000  # room for any real weir file
