"""weir: declarative data pipelines into a Delta Lake medallion."""

__version__ = "0.1.0"
