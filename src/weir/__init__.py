"""weir: declarative data pipelines into a Delta Lake medallion."""

from weir.memory import native_defaults

native_defaults()  # before anything loads delta-rs (weir/memory.py says why)

__version__ = "0.1.0"
