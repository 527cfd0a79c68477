from .linear_probe import LinearProbeHead

__all__ = ["LinearProbeHead"]
