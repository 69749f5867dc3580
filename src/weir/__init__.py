"""weir: declarative data pipelines into a Delta Lake medallion."""

from weir.lake.tuning import native_defaults

native_defaults()  # before anything loads delta-rs (weir/lake/tuning.py says why)

__version__ = "0.1.0"
