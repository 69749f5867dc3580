"""How a pipeline learns that source rows were deleted, and what silver does about it.

Shared by every source that can know of deletes, in its ``extract:`` block as ``deletes:``:

- ``detect: keys`` (a ``sql`` source, ``full`` or ``incremental``): the source's current key
  set is compared with silver's, streamed (:meth:`weir.sources.base.Source.key_set`); keys
  silver holds that the source no longer has are deletes. ``every: N`` reconciles on every
  N-th run only (the comparison reads every key of both sides).
- ``detect: log`` (change events: ``sql`` with ``strategy: cdc``, the files source with
  ``format: debezium``): the source delivers delete events itself.

With ``detect: keys``, ``max_delete_ratio`` (default 0.5) guards against a source that
suddenly lists far fewer keys (a wrong table, a permission that hides rows): a reconciliation
that would delete more than that share of silver's live keys deletes nothing and fails the
run, naming the counts; raise it (up to 1.0) for the run that should delete that much.

``action`` is the same for both: ``soft`` (the default: nothing is lost) keeps the row and sets
:data:`weir.layout.IS_DELETED` and :data:`weir.layout.DELETED_AT`; ``hard`` removes it from
silver. The run record counts what was deleted either way.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from weir.spec.base import Strict

DeleteAction = Literal["soft", "hard"]


class Deletes(Strict):
    detect: Literal["keys", "log"] = "keys"
    action: DeleteAction = "soft"
    every: int = Field(default=1, ge=1, le=10_000)
    """``detect: keys`` only: reconcile on every N-th run of the pipeline."""
    max_delete_ratio: float = Field(default=0.5, gt=0, le=1)
    """``detect: keys`` only: the largest share of silver's live keys one reconciliation may
    delete; more fails the run and deletes nothing."""


def by_keys(deletes: Deletes | None, *, emits_changes: bool) -> Deletes | None:
    """The settings of key reconciliation (``detect: keys``) of a source so configured, or
    None: it does not reconcile (no ``deletes``, or change events that carry their own)."""
    if deletes is None or emits_changes or deletes.detect != "keys":
        return None
    return deletes
