"""Quality checks: one module per check kind, one registry, one runner, typed results.

- ``kinds/``: the registry (``kinds/__init__.py``) and one module per kind, each owning what
  its entries need and its SQL;
- ``compile.py``: a contract's rules (and a model's checks) → :class:`rules.CompiledChecks`,
  evaluated in the one scan that shapes the rows (``rules.py``);
- ``runner.py``: the compiled checks run in DuckDB, as ``result.CheckResult`` values;
- ``validate.py``: a loaded project's checks validated (kinds, names, model columns via
  ``outputs.py``), with file:line.

This package imports nothing on its own: ``weir.observe.record`` needs only ``result.py``.
"""
