"""``weir infer``: draft a contract (and a pipeline file) from a table's catalog."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from weir.commands.base import Command, Output
from weir.errors import UsageError

if TYPE_CHECKING:
    from weir.sources.sql.config import Database

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _infer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        required=True,
        help="the database: an environment variable's name (SHOP_DB_URL), or a url whose "
        "password comes from one: 'postgresql://user:${env:PGPASSWORD}@host:5432/db', "
        "'sqlite:///data/shop.db' (relative to --project)",
    )
    p.add_argument("--table", required=True, help="the table or view: name or schema.name")
    p.add_argument("--name", help="the contract id and pipeline name (default: the table's name)")
    p.add_argument(
        "--output",
        type=Path,
        help="the contract file, relative to --project (default: contracts/NAME.yml)",
    )
    p.add_argument(
        "--pipeline",
        action="store_true",
        help="also draft pipelines/NAME.yml: the sql source reading the table",
    )
    p.add_argument("--owner", default="data-eng", help="the owning team (default: data-eng)")
    p.add_argument("--force", action="store_true", help="overwrite files that exist")


def resolve_url(text: str, environ: Mapping[str, str]) -> tuple[str, Database]:
    """The url as a pipeline file writes it (``${env:…}`` kept), and the database it names.
    UsageError for an unset variable, a bad url or a password written on the command line."""
    from weir.sources.sql.config import parse_url
    from weir.spec.yamlsrc import Document, resolve_env

    written = f"${{env:{text}}}" if _ENV_NAME.fullmatch(text) else text
    doc = Document(path=Path("--url"), data=written)
    missing = resolve_env(doc, dict(environ))
    if missing:
        raise UsageError(
            f"--url reads {', '.join(m.split(' (')[0] for m in missing)}",
            hint="export the variable (its value is never printed)",
        )
    try:
        database = parse_url(str(doc.data))
    except ValueError as exc:
        raise UsageError(f"--url: {exc}") from None
    if database.password and "${env:" not in _password_part(written):
        raise UsageError(
            "--url holds a password written on the command line (shells keep it in history)",
            hint="read it from the environment: --url 'postgresql://user:${env:PGPASSWORD}@…', "
            "or the whole url from a variable: --url SHOP_DB_URL",
        )
    return written, database


def _password_part(url: str) -> str:
    """What stands between ``user:`` and ``@`` in ``url`` as written (``${env:…}`` or not)."""
    credentials = url.partition("://")[2].rpartition("@")[0]
    return credentials.partition(":")[2] if "@" in url else url


def _infer(args: argparse.Namespace, out: Output) -> int:
    from weir.sources.sql.catalog import read_table
    from weir.spec.draft import draft, name_for, write

    written, database = resolve_url(args.url, os.environ)
    if database.password:  # never printed, nor the url that holds it
        out.hide(frozenset({database.password, database.url}))
    name = name_for(args.table, args.name)
    root = Path(args.project)
    contract_path = root / (args.output or Path("contracts") / f"{name}.yml")
    pipeline_path = root / "pipelines" / f"{name}.yml" if args.pipeline else None
    for path in (contract_path, pipeline_path):
        if path is not None and path.exists() and not args.force:
            raise UsageError(f"{path} exists", hint="choose another --output or pass --force")
    out.progress(f"reading the catalog of {database.dialect} {database.name}, table {args.table}")
    table = read_table(database, args.table, str(root))
    extract = {"source": "sql", "url": written, "table": args.table}
    result = draft(table, name=name, owner=args.owner, extract=extract if args.pipeline else None)
    write(result, contract_path, pipeline_path)
    keys = [result.silver_names[c.source_name] for c in table.keys]
    out.text(
        f"drafted {contract_path} from {table.source}, table {table.name}: "
        f"{len(table.columns)} columns, primary key {', '.join(keys) or '(none)'}"
    )
    if pipeline_path is not None:
        how = f"incremental on {result.cursor}" if result.cursor else "full"
        out.text(f"drafted {pipeline_path}: sql source, {how}")
    for silver, reason in result.pii.items():
        out.text(f"  suggestion: {silver} classified pii ({reason}): confirm it in the file")
    for column in table.columns:
        if column.note:
            out.text(f"  check: {result.silver_names[column.source_name]}: {column.note}")
    out.text(f"next: review the draft, then weir validate --project {root}")
    out.json(result.as_dict(table, contract_path, pipeline_path))
    return 0


COMMANDS: dict[str, Command] = {
    "infer": (
        "draft a contract (and with --pipeline a pipeline file) from a database table's "
        "catalog; never at run time",
        _infer_args,
        _infer,
    ),
}
