"""ResNet-18/34/50 classifiers in 2D and 3D on MONAI's ResNet, with a penultimate-feature hook."""

from __future__ import annotations

import torch
from torch import nn

NORMS = ("batch", "group")
ARCHS = {
    "resnet18": ("basic", [2, 2, 2, 2]),
    "resnet34": ("basic", [3, 4, 6, 3]),
    "resnet50": ("bottleneck", [3, 4, 6, 3]),
}


class Classifier(nn.Module):
    """``backbone`` (MONAI ResNet without its fc) -> ``features (N, D)`` -> ``head`` -> ``logits (N, C)``.

    ``config`` holds the constructor arguments, so a checkpoint rebuilds the model from the file alone.

    Args:
        arch: ``resnet18``, ``resnet34`` or ``resnet50``.
        spatial_dims: 2 (images) or 3 (volumes).
        in_channels: channels ``C`` of the input.
        num_classes: classes of the head, >= 2.
        small_input: a 3x3 stride-1 stem without max-pool (for 28-64 px inputs).
        widen_factor: channel multiplier of every stage (at least one stem channel).
        norm: ``batch`` or ``group`` (GroupNorm: batch-size independent).

    Raises ``ValueError`` for any argument outside these ranges.
    """

    def __init__(
        self,
        arch: str = "resnet18",
        spatial_dims: int = 2,
        in_channels: int = 3,
        num_classes: int = 2,
        small_input: bool = True,
        widen_factor: float = 1.0,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        if int(64 * widen_factor) < 1:
            raise ValueError(f"widen_factor must be >= 1/64 (at least one channel), got {widen_factor}")
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.spatial_dims, self.in_channels = spatial_dims, in_channels
        self.config = dict(
            arch=arch,
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            num_classes=num_classes,
            small_input=small_input,
            widen_factor=widen_factor,
            norm=norm,
        )
        # imported here: MONAI loads all of its submodules (1-2 s), and config checks need only ARCHS
        from monai.networks.nets import ResNet

        block, layers = ARCHS[arch]
        # 28-px inputs lose everything to a 7x7/2 stem plus max-pool; a 3x3/1 stem keeps the detail
        self.backbone = ResNet(
            block=block,
            layers=layers,
            block_inplanes=[64, 128, 256, 512],
            spatial_dims=spatial_dims,
            n_input_channels=in_channels,
            widen_factor=widen_factor,
            feed_forward=False,
            conv1_t_size=3 if small_input else 7,
            conv1_t_stride=1 if small_input else 2,
            no_max_pool=small_input,
        )
        if norm == "group":
            _batchnorm_to_groupnorm(self.backbone)
        width = int(512 * widen_factor) * (4 if block == "bottleneck" else 1)
        self.feature_dim = width
        self.head = nn.Linear(width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(N, D)`` (after global average pooling, before the classifier)."""
        expected = 2 + self.spatial_dims
        if x.ndim != expected or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected images (N, {self.config['in_channels']}, *spatial) with {expected} dims, "
                f"got shape={tuple(x.shape)}"
            )
        return self.backbone(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` of images ``(N, in_channels, *spatial)``."""
        return self.head(self.features(x))


def group_count(channels: int, most: int = 8) -> int:
    """The largest number of groups <= ``most`` that divides ``channels`` (GroupNorm needs a divisor).

    Widths such as ``widen_factor 0.3`` give 19 channels: 1 group (layer-norm-like) instead of a crash.
    """
    return max(g for g in range(1, most + 1) if channels % g == 0)


def _batchnorm_to_groupnorm(module: nn.Module) -> None:
    """Swap every BatchNorm for GroupNorm (MONAI's ResNet passes ``norm`` to its stem only).

    Batch-independent normalisation makes training with tiny or sharded batches (CPU DDP, where
    PyTorch has no SyncBatchNorm) give the same result as one process on the whole batch.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            c = child.num_features
            setattr(module, name, nn.GroupNorm(group_count(c), c))
        else:
            _batchnorm_to_groupnorm(child)


def build_model(
    arch: str,
    spatial_dims: int,
    in_channels: int,
    num_classes: int,
    *,
    small_input: bool = True,
    widen_factor: float = 1.0,
    norm: str = "batch",
) -> Classifier:
    """A ResNet classifier; ``small_input=True`` uses a 3x3 stride-1 stem without max-pool.

    ``norm="group"`` replaces BatchNorm by GroupNorm (batch-size independent).
    """
    return Classifier(arch, spatial_dims, in_channels, num_classes, small_input, widen_factor, norm)
