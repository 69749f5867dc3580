"""How a pipeline learns that source rows were deleted, and what silver does about it.

Shared by every source that can know of deletes, in its ``extract:`` block as ``deletes:``:

- ``detect: keys`` (a ``sql`` source, ``full`` or ``incremental``): the source's current key
  set is compared with silver's, streamed (:meth:`weir.sources.base.Source.key_set`); keys
  silver holds that the source no longer has are deletes. ``every: N`` reconciles on every
  N-th run only (the comparison reads every key of both sides).
- ``detect: log`` (change events: ``sql`` with ``strategy: cdc``, the files source with
  ``format: debezium``): the source delivers delete events itself.

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
