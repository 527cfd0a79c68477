"""Image restorers for mmengine's Runner (denoising)."""
