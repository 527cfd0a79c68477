"""Building blocks of heads: deformable attention and Mask2Former's pixel decoder with a choice of kernel."""
