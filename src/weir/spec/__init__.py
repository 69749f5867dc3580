"""YAML → typed config. Strict at the edge: every error names file:line, field path and a hint."""

from weir.spec.load import Model, Pipeline, Project, find_root, load_project

__all__ = ["Model", "Pipeline", "Project", "find_root", "load_project"]
