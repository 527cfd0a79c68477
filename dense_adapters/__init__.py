"""dense-adapters: register-token and Skip-Attention ViTs for dense prediction with OpenMMLab."""
__version__ = "0.1.0"
