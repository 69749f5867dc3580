"""Commands about one gold model: compile, show."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from weir.commands.base import Command, Output, load
from weir.errors import UsageError

if TYPE_CHECKING:
    from weir.spec import Project


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a gold model (its file name in models/, without .sql)")


def _show_args(p: argparse.ArgumentParser) -> None:
    _model_args(p)
    p.add_argument(
        "--limit", type=_positive, default=20, help="rows to show (default 20, at most 10000)"
    )


def _positive(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to 10000, not {text!r}")
    return int(text)


def _model(project: Project, name: str) -> Any:
    from weir.hints import did_you_mean

    if name not in project.models:
        raise UsageError(
            f"no model named {name!r}",
            hint=did_you_mean(name, project.models) or "models are the .sql files in models/",
        )
    return project.models[name]


def _compile(args: argparse.Namespace, out: Output) -> int:
    from weir.run.model import compiled_sql

    model = _model(load(args, out), args.model)
    sql = compiled_sql(model, pretty=True)
    out.text(sql)
    out.json({"model": model.name, "sql": sql, "reads": list(model.depends_on)})
    return 0


def _show(args: argparse.Namespace, out: Output) -> int:
    from weir.run.model import ModelRun

    project = load(args, out)
    model = _model(project, args.model)
    rows = ModelRun(project, model, progress=out.progress).preview(args.limit)
    out.text(_grid(rows.column_names, rows.to_pylist()))
    out.text(f"({rows.num_rows} rows shown, at most {args.limit}; nothing was written)")
    out.json({"model": model.name, "columns": rows.column_names, "rows": rows.to_pylist()})
    return 0


def _grid(columns: list[str], rows: list[dict[str, Any]], width: int = 30) -> str:
    """Rows as aligned text columns, each value cut at ``width`` characters."""

    def cell(value: Any) -> str:
        text = "NULL" if value is None else str(value).replace("\n", " ")
        return text if len(text) <= width else text[: width - 1] + "…"

    table = [columns, *([cell(r[c]) for c in columns] for r in rows)]
    sizes = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(n) for v, n in zip(line, sizes, strict=True)) for line in table]
    lines.insert(1, "  ".join("-" * n for n in sizes))
    return "\n".join(line.rstrip() for line in lines)


COMMANDS: dict[str, Command] = {
    "compile": (
        "print the SQL a model runs (after weir's rewrites)",
        _model_args,
        _compile,
    ),
    "show": (
        "preview a model's result from the current sources; writes nothing",
        _show_args,
        _show,
    ),
}
