"""Image-level models for mmengine's Runner: a fine-tuned classifier, DINOv2's frozen linear-probe grid, k-NN."""
