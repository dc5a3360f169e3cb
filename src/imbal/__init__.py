"""imbal: imbalance-aware losses, samplers and studies for medical image classification."""

__version__ = "0.1.0"
