"""YAML → typed config. Strict at the edge: every error names file:line, field path and a hint."""

from weir.spec.load import find_root, load_project
from weir.spec.loaded import Model, Pipeline, Project

__all__ = ["Model", "Pipeline", "Project", "find_root", "load_project"]
