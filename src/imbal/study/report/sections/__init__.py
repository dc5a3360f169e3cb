"""The sections of a data set's report, one module per meaning: findings, context and the free
post-hoc baseline, metric tables, calibration, comparisons, feature space, and the race."""
