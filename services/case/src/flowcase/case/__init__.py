"""The case service's core: the case aggregate, its application and its audit chain (no I/O)."""
