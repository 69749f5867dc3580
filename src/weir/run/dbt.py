"""The run of a dbt step: weir's tables exposed to DuckDB, a freshness gate, ``dbt build``.

1. warehouse: every table the step reads becomes a view in the step's DuckDB file
   (schemas ``silver`` and ``gold``) over the table's current Delta snapshot;
2. profile: unless the step names its own ``profiles_dir``, weir writes a profiles.yml whose
   profile (named by dbt_project.yml) points dbt-duckdb at that file;
3. freshness: ``dbt source freshness``; a source past its ``error_after`` stops the step
   before anything is built;
4. build: ``dbt build``; every node's result lands in the run record, and an errored node or
   a failed error-severity test fails the step.

Each dbt command runs through ``dbtRunner`` in a child process (``run/dbt_child.py``): dbt
keeps process-wide state (flags, loggers, dbt-duckdb's open DuckDB file), some of its
commands move the process into the project folder, and so can a Python model; none of it
may reach the threads running other nodes (install the ``dbt`` extra). Its console
output is switched off: what it logs goes to ``.weir/dbt/<step>/logs/dbt.log``, its
artifacts to ``.weir/dbt/<step>/target``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from weir.errors import ConfigError, QualityError, TransformError, WeirError
from weir.lake.warehouse import expose
from weir.observe.record import RunRecord
from weir.quality.result import CheckResult, CheckStatus
from weir.run.node import NodeRun, Progress, quiet
from weir.spec.dbt import dbt_profile
from weir.spec.loaded import DbtStep, Project
from weir.transform.dbt_graph import BUILT as _BUILT
from weir.transform.dbt_graph import DbtGraph, graph_of
from weir.transform.definition import dbt_fingerprint

_WAREHOUSES: dict[Path, threading.Lock] = {}
_WAREHOUSES_LOCK = threading.Lock()
"""One dbt command at a time per warehouse file (DuckDB opens a file for one writer)."""

_TESTS = ("test", "unit_test")


@dataclass(frozen=True)
class StepPaths:
    """Where a step's dbt project is and where weir keeps its profile, artifacts and logs."""

    project_dir: Path
    profiles_dir: Path
    warehouse: Path
    target: Path
    logs: Path
    own_profile: bool
    """True when weir writes profiles.yml (the step names no ``profiles_dir``)."""

    @classmethod
    def of(cls, project: Project, step: DbtStep) -> StepPaths:
        options, root = step.spec.dbt, project.root
        home = project.state_dir / "dbt" / step.name
        profiles = root / options.profiles_dir if options.profiles_dir else home
        return cls(
            project_dir=(root / options.project_dir).resolve(),
            profiles_dir=profiles.resolve(),
            warehouse=(root / step.spec.warehouse).resolve(),
            target=home / "target",
            logs=home / "logs",
            own_profile=options.profiles_dir is None,
        )


class DbtRun(NodeRun):
    """One execution of one dbt step. ``execute`` never raises for step failures: the
    outcome is in the returned record (status, stage, error_message, nodes)."""

    kind = "dbt"

    def __init__(
        self,
        project: Project,
        step: DbtStep,
        *,
        run_id: str | None = None,
        wait: bool = False,
        progress: Progress = quiet,
    ):
        super().__init__(project, step.name, run_id=run_id, wait=wait, progress=progress)
        self.step = step
        self.paths = StepPaths.of(project, step)
        self._exposed: dict[str, int | None] = {}

    def _lineage_tables(self) -> tuple[list[str], list[str]]:
        return list(self.step.depends_on), [f"dbt.{self.step.name}"]

    def _versions(self) -> dict[str, int | None]:
        """The Delta version of each table the build read (None: not there yet)."""
        return self._exposed

    # ---------------------------------------------------------------- the run
    def _run(self) -> None:
        self.record.definition = dbt_fingerprint(self.step, self.paths.project_dir)
        self.enter("warehouse")
        self._expose()
        self.enter("profile")
        if self.paths.own_profile:
            write_profile(self.project, self.step, self.paths)
        if self.step.spec.dbt.freshness:
            self.enter("freshness")
            self._freshness()
        self.enter("build")
        self._build()

    def _expose(self) -> None:
        lake = self.project.lake
        tables = {name: f"{lake}/{'/'.join(name.split('.', 1))}" for name in self.step.depends_on}
        count = f"{len(tables)} weir table{'s' if len(tables) != 1 else ''}"
        self.progress(f"exposing {count} to dbt in {self.paths.warehouse.name}")
        exposed = expose(self.paths.warehouse, tables)
        self._exposed = {**exposed.versions, **dict.fromkeys(exposed.missing)}
        for name in exposed.missing:
            self.record.warnings.append(
                f"{name} does not exist yet (nothing loaded it): dbt sees no view for it"
            )

    def _freshness(self) -> None:
        out = self.paths.target / "sources.json"
        out.unlink(missing_ok=True)
        self.progress("dbt source freshness")
        args = ["source", "freshness", "--output", str(out)]
        selectors = [s if s.startswith(("+", "@")) else f"+{s}" for s in self.step.spec.dbt.select]
        if selectors:
            args += ["--select", *selectors]
        result = invoke(self._args(args), self.paths)
        report = _read_json(out)
        if report is None:
            if result.exception is not None:
                raise translate(result.exception, "source freshness", self.paths)
            return  # no source declares a freshness: the gate has nothing to check
        stale = []
        for entry in report.get("results", []):
            check = freshness_check(entry)
            self.record.checks.append(check)  # not counted: quality_checks_* count dbt tests
            if check.severity == "warn" and not check.passed:
                self.record.warnings.append(f"source freshness: {check.observed}")
            elif not check.passed:
                stale.append(str(check.observed))
        if stale:
            raise QualityError(
                "source freshness failed, nothing was built: " + "; ".join(stale),
                where=str(self.paths.project_dir),
                hint="run the upstream pipelines (`weir run`), or relax the source's "
                "freshness in the dbt project; `dbt.freshness: false` skips the gate",
            )

    def _build(self) -> None:
        options = self.step.spec.dbt
        results_path = self.paths.target / "run_results.json"
        results_path.unlink(missing_ok=True)
        args = ["build"]
        if options.select:
            args += ["--select", *options.select]
        if options.exclude:
            args += ["--exclude", *options.exclude]
        self.progress("dbt build")
        result = invoke(self._args(args), self.paths)
        results = _read_json(results_path)
        if results is None:
            exc = result.exception or TransformError("dbt build produced no run_results.json")
            raise translate(exc, "build", self.paths)
        manifest = _read_json(self.paths.target / "manifest.json") or {}
        outcome = Outcome.of(node_results(results, manifest))
        outcome.apply(self.record)
        outcome.raise_for_failures(self.paths)
        if not result.success:
            exc = result.exception or TransformError("dbt build failed, though no node did")
            raise translate(exc, "build", self.paths)

    def _args(self, command: list[str]) -> list[str]:
        return dbt_args(self.step, self.paths, command)


# ---------------------------------------------------------------- invoking dbt
def dbt_args(step: DbtStep, paths: StepPaths, command: list[str]) -> list[str]:
    """``command`` with the step's paths, target and vars; dbt's console output off."""
    options = step.spec.dbt
    args = [
        *command,
        "--project-dir",
        str(paths.project_dir),
        "--profiles-dir",
        str(paths.profiles_dir),
        "--target-path",
        str(paths.target),
        "--log-path",
        str(paths.logs),
        "--log-level",
        "none",
        "--log-level-file",
        "info",
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
    ]
    if options.target:
        args += ["--target", options.target]
    if options.vars:
        args += ["--vars", json.dumps(options.vars, default=str)]
    return args


class DbtFailure(Exception):
    """The exception a dbt command reported, as its child process described it."""

    def __init__(self, message: str, *, unique_id: str | None, path: str | None):
        super().__init__(message)
        self.unique_id = unique_id
        self.path = path


@dataclass(frozen=True)
class Invocation:
    """What one dbt command returned: whether it succeeded, and the exception it reported."""

    success: bool
    exception: DbtFailure | None


def invoke(args: list[str], paths: StepPaths) -> Invocation:
    """Run one dbt command in a child process (``weir.run.dbt_child``), in the project
    folder, and wait for it; weir's working directory never changes."""
    paths.logs.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="invocation-", suffix=".json", dir=paths.logs)
    os.close(fd)
    result = Path(name)
    try:
        with _warehouse_lock(paths.warehouse):
            done = subprocess.run(
                [sys.executable, "-m", "weir.run.dbt_child", str(result), *args],
                cwd=paths.project_dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                check=False,
            )
        text = result.read_text(encoding="utf-8")
    finally:
        result.unlink(missing_ok=True)
    try:
        outcome = json.loads(text)
    except ValueError:  # no result, or half of one: the child did not finish
        outcome = None
    if not isinstance(outcome, dict):
        output = " ".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise TransformError(
            f"dbt {args[0]} stopped without a result (exit code {done.returncode})"
            + (f": {output[-1000:]}" if output else ""),
            where=str(paths.project_dir),
            hint=f"the dbt log is {paths.logs / 'dbt.log'}",
        )
    if "missing" in outcome:
        raise ConfigError(
            "dbt steps need dbt-core and dbt-duckdb, which are not installed "
            f"({outcome['missing']})",
            hint="install weir with the dbt extra: pip install '.[dbt]' in a weir checkout "
            "(the distribution is weir-pipelines[dbt])",
        )
    error = outcome.get("error")
    failure = None
    if error is not None:
        failure = DbtFailure(
            error["message"] or error["type"], unique_id=error["unique_id"], path=error["path"]
        )
    return Invocation(bool(outcome["success"]), failure)


def _warehouse_lock(warehouse: Path) -> threading.Lock:
    with _WAREHOUSES_LOCK:
        return _WAREHOUSES.setdefault(warehouse, threading.Lock())


def translate(exc: BaseException, command: str, paths: StepPaths) -> WeirError:
    """A dbt exception as a TransformError naming the node (when dbt says which)."""
    if isinstance(exc, WeirError):
        return exc
    unique_id = exc.unique_id if isinstance(exc, DbtFailure) else None
    source_file = exc.path if isinstance(exc, DbtFailure) else None
    text = str(exc).strip() or type(exc).__name__
    if len(text) > 2000:
        text = text[:2000] + " …"
    about = f" at {unique_id}" if unique_id else ""
    return TransformError(
        f"dbt {command} failed{about}: {text}",
        where=str(paths.project_dir / source_file) if source_file else str(paths.project_dir),
        hint=f"the full dbt log is {paths.logs / 'dbt.log'}",
    )


def write_profile(project: Project, step: DbtStep, paths: StepPaths) -> None:
    """profiles.yml with the dbt project's profile pointing at the step's warehouse."""
    target = step.spec.dbt.target or "weir"
    output = {
        "type": "duckdb",
        "path": str(paths.warehouse),
        "threads": min(4, os.cpu_count() or 1),
        "settings": {
            "memory_limit": project.spec.duckdb_memory_limit,
            "temp_directory": str(project.state_dir / "tmp"),
        },
    }
    data = {dbt_profile(paths.project_dir): {"target": target, "outputs": {target: output}}}
    text = f"# written by weir for dbt step {step.name!r} on every run; do not edit\n"
    text += yaml.safe_dump(data, sort_keys=False)
    paths.profiles_dir.mkdir(parents=True, exist_ok=True)
    tmp = paths.profiles_dir / "profiles.yml.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, paths.profiles_dir / "profiles.yml")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise TransformError(f"cannot read dbt's {path.name}: {exc}", where=str(path)) from exc
    return data


# ---------------------------------------------------------------- results
def freshness_check(entry: dict[str, Any]) -> CheckResult:
    """One ``sources.json`` result as a check of the run record: dbt's ``warn`` is a failed
    check of severity warn, its ``error`` a failed one of severity error."""
    unique_id = str(entry.get("unique_id", ""))
    name = ".".join(unique_id.split(".")[-2:])
    status = str(entry.get("status", ""))
    age = entry.get("max_loaded_at_time_ago_in_s")
    if status == "runtime error":
        observed = f"{name}: {entry.get('error') or 'the freshness query failed'}"
    elif age is not None:
        limit = (entry.get("criteria") or {}).get("error_after") or {}
        bound = f", error after {limit['count']} {limit['period']}" if limit.get("count") else ""
        observed = f"{name} last loaded {float(age) / 3600:.1f} h ago ({status}{bound})"
    else:
        observed = f"{name}: {status}"
    outcome: CheckStatus = (
        "pass" if status == "pass" else "error" if status == "runtime error" else "fail"
    )
    return CheckResult(
        name=f"freshness {name}",
        kind="dbt_freshness",
        severity="warn" if status in ("pass", "warn") else "error",
        status=outcome,
        observed=observed,
        unique_id=unique_id,
    )


def check_of_test(node: dict[str, Any]) -> CheckResult | None:
    """A dbt test's node result (from :func:`node_results`) as a check of the run record;
    None for a test that did not run (skipped)."""
    status = node["status"]
    if status not in ("pass", "fail", "warn", "error", "runtime error"):
        return None
    failures = node.get("failures")
    return CheckResult(
        name=str(node["name"]),
        kind="dbt_test",
        severity="warn" if status == "warn" else "error",
        status="pass" if status == "pass" else "fail" if status in ("fail", "warn") else "error",
        failing_rows=int(failures or 0),
        unique_id=str(node["unique_id"]),
        message=None if status == "pass" else node.get("message"),
    )


def node_results(results: dict[str, Any], manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Every result of run_results.json, named and typed from manifest.json."""
    known: dict[str, Any] = {}
    for section in ("nodes", "sources", "unit_tests"):
        known.update(manifest.get(section) or {})
    nodes = []
    for result in results.get("results", []):
        unique_id = str(result["unique_id"])
        node = known.get(unique_id) or {}
        entry: dict[str, Any] = {
            "unique_id": unique_id,
            "name": node.get("name") or unique_id.rsplit(".", 1)[-1],
            "resource_type": node.get("resource_type") or unique_id.split(".", 1)[0],
            "status": str(result.get("status")),
            "execution_time": round(float(result.get("execution_time") or 0.0), 3),
            "message": result.get("message"),
            "failures": result.get("failures"),
            "path": node.get("original_file_path"),
        }
        rows = (result.get("adapter_response") or {}).get("rows_affected")
        if rows is not None:
            entry["rows_affected"] = int(rows)
        nodes.append(entry)
    return nodes


@dataclass
class Outcome:
    """A build's node results sorted into what passed, failed, warned and was skipped."""

    nodes: list[dict[str, Any]]
    errored: list[dict[str, Any]] = field(default_factory=list)
    failed_tests: list[dict[str, Any]] = field(default_factory=list)
    warned_tests: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, nodes: list[dict[str, Any]]) -> Outcome:
        outcome = cls(nodes)
        for node in nodes:
            status, is_test = node["status"], node["resource_type"] in _TESTS
            if status in ("error", "runtime error"):
                outcome.errored.append(node)
            elif status == "fail" and is_test:
                outcome.failed_tests.append(node)
            elif status == "warn" and is_test:
                outcome.warned_tests.append(node)
            elif status == "skipped":
                outcome.skipped.append(node)
        return outcome

    def apply(self, record: RunRecord) -> None:
        record.nodes = self.nodes
        for node in self.nodes:
            check = check_of_test(node) if node["resource_type"] in _TESTS else None
            if check is not None:
                record.add_check(check)
        record.rows_loaded += sum(
            n.get("rows_affected") or 0 for n in self.nodes if n["resource_type"] not in _TESTS
        )
        record.changed = any(
            n["resource_type"] in _BUILT and n["status"] == "success" for n in self.nodes
        )
        for node in self.warned_tests:
            record.warnings.append(f"dbt test {node['name']} warned: {node['message']}")
        if self.skipped:
            record.warnings.append(f"dbt skipped {len(self.skipped)} nodes: {_names(self.skipped)}")

    def raise_for_failures(self, paths: StepPaths) -> None:
        log = paths.logs / "dbt.log"
        skipped = f"; skipped: {_names(self.skipped)}" if self.skipped else ""
        failing = self.errored + self.failed_tests
        where = (
            str(paths.project_dir / failing[0]["path"]) if failing and failing[0]["path"] else None
        )
        if self.errored:
            raise TransformError(
                "dbt build failed: " + "; ".join(_describe(n) for n in failing) + skipped,
                where=where or str(paths.project_dir),
                hint=f"the compiled SQL is under {paths.target / 'run'}; the log is {log}",
            )
        if self.failed_tests:
            raise QualityError(
                "dbt tests failed: " + "; ".join(_describe(n) for n in failing) + skipped,
                where=where or str(paths.project_dir),
                hint=f"each test's SQL is under {paths.target / 'compiled'}: run it to see the "
                "failing rows, then fix the data upstream or the test",
            )


def _names(nodes: list[dict[str, Any]], limit: int = 10) -> str:
    names = ", ".join(n["name"] for n in nodes[:limit])
    return names + (f" and {len(nodes) - limit} more" if len(nodes) > limit else "")


def _describe(node: dict[str, Any]) -> str:
    kind, name = node["resource_type"], node["name"]
    if node["status"] == "fail":
        failures = node.get("failures")
        rows = f"{failures} failing row{'s' if failures != 1 else ''}" if failures else "failed"
        return f"{kind} {name} failed ({rows})"
    message = " ".join(line.strip() for line in str(node.get("message") or "").splitlines())
    if len(message) > 500:
        message = message[:500] + " …"
    return f"{kind} {name} errored: {message or 'no message'}"


# ---------------------------------------------------------------- lineage
def dbt_graph(project: Project, step: DbtStep) -> DbtGraph:
    """The step's dbt graph from its last manifest.json (``dbt parse`` makes one if none)."""
    paths = StepPaths.of(project, step)
    path = paths.target / "manifest.json"
    manifest = _read_json(path)
    if manifest is None:
        if paths.own_profile:
            write_profile(project, step, paths)
        result = invoke(dbt_args(step, paths, ["parse"]), paths)
        manifest = _read_json(path)
        if manifest is None:
            exc = result.exception or TransformError("dbt parse wrote no manifest.json")
            raise translate(exc, "parse", paths)
    tables = {f"silver.{p.table}" for p in project.pipelines.values()}
    tables |= {f"gold.{m}" for m in project.models}
    return graph_of(step.name, manifest, tables)
