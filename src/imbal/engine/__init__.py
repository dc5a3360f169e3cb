"""Training engine: config, Fabric loop, run folders, evaluation."""
