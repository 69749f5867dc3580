"""``weir`` with stage markers: ``python bench/weir_traced.py EVENTS run --project DIR NAME``.

Runs ``weir.cli.main`` (what the ``weir`` script runs) with :class:`probe.Probe` installed,
appending ``time<TAB>enter|exit<TAB>stage`` lines to EVENTS, and a final JSON line with the
self time of every stage and the kernel's peak RSS of this process (``VmHWM``). The parent
samples this process's memory and lines the samples up with the stages.

``VmHWM`` is read here because the parent's ``ru_maxrss`` for a child is not usable: Linux
carries the pre-``exec`` high-water mark over ``exec``, i.e. the forking benchmark's own RSS.
"""

from __future__ import annotations

import json
import sys

from probe import Probe

from weir.cli import main


def traced(events: str, argv: list[str]) -> int:
    with open(events, "w", buffering=1 << 16) as out:

        def note(when: float, kind: str, label: str) -> None:
            out.write(f"{when:.6f}\t{kind}\t{label}\n")

        with Probe(on_event=note) as probe:
            code = main(argv)
        summary = {"stages": probe.stages(), "missing": probe.missing, "vmhwm": _vmhwm()}
        out.write(json.dumps(summary) + "\n")
    return code


def _vmhwm() -> int:
    """Peak resident set of this process since ``exec``, in bytes (0 where unknown)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(traced(sys.argv[1], sys.argv[2:]))
