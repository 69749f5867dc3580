"""Helpers shared by the tests (importable because pytest puts tests/ on the path):

- ``projects``: the orders contract and pipeline, project files, Delta tables read back,
  ``weir run`` in a subprocess;
- ``modelkit``: projects with gold models over an ``events`` pipeline;
- ``restserver``: a real local HTTP server with pagination styles and faults.

Fixtures stay in ``conftest.py``; tests import helpers from here, never from ``conftest``.
"""
