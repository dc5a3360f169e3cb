"""Studies: the loss x sampler x seed grid, its report and feature maps."""
