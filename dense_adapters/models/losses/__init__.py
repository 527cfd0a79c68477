"""Losses of dense-adapters (registered in ``dense_adapters.registry.MODELS``)."""
