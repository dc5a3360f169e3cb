"""``preprocessing.json``: what a caller in any language must do to an input before the exported model.

It restates, as data, the decoding of :mod:`imbal.data.inputs` (image files through
:func:`~imbal.data.folder.read_image`, NIfTI volumes through :func:`~imbal.data.nifti.read_channel`,
arrays through :func:`~imbal.data.npz.images_to_tensor`), then the one scaling every path shares:
uint8 values / 255 as float32. The centre crop of a run trained with crops is inside the model. A
test reads a PNG and a NIfTI file with numpy, PIL and nibabel from this file alone and gets
predict's input tensor.

Post hoc (stated choice): the model outputs the raw ``logits`` and their plain ``softmax``
(``imbal predict`` without ``--posthoc``); the run's temperature and logit-adjustment tau are
described here with the formulas and the per-class offset to subtract, not applied in the graph, so
one file serves both uses and a caller can see which numbers it applies.
"""

from __future__ import annotations

from typing import Any

import torch

from imbal import __version__
from imbal.data.medmnist_info import MEDMNIST
from imbal.export.parity import LOGIT_TOLERANCE, Parity
from imbal.export.source import LoadedRun
from imbal.posthoc import adjust_logits

FILE = "preprocessing.json"
SCALING = "x = float32(uint8_value) / 255, so x lies in [0, 1]"


def _image_files(run: LoadedRun) -> dict[str, Any] | None:
    want = run.want
    if want.spatial_dims != 2 or want.in_channels not in (1, 3):
        return None
    height, width = want.spatial_size
    mode = "RGB" if want.in_channels == 3 else "L"
    return {
        "suffixes": [".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"],
        "convert": mode,
        "resize": {"height": height, "width": width, "method": "bilinear", "library": "PIL"},
        "steps": [
            "open the file with PIL; 16-bit grey or float pixels must be whole numbers in 0..255 (16-bit "
            "colour PNGs are refused)",
            f"convert it to PIL mode {mode!r}"
            + (
                " (colour files: L = (19595 R + 38470 G + 7471 B + 32768) >> 16, PIL's rounded ITU-R 601-2 luma)"
                if mode == "L"
                else ""
            ),
            f"resize it to width {width}, height {height} with PIL's Image.resize(..., Resampling.BILINEAR), a "
            "triangle filter that widens with the reduction factor (antialiased, like torch's interpolate with "
            "antialias=True); plain bilinear (OpenCV INTER_LINEAR, torch without antialias) differs by up to "
            "about 110 grey levels when shrinking a large image",
            "take the pixels as uint8 (H, W) or (H, W, 3) and move channels first: (C, H, W)",
            SCALING,
        ],
    }


def _volumes(run: LoadedRun) -> dict[str, Any] | None:
    want = run.want
    if want.spatial_dims != 3:
        return None
    depth, height, width = want.spatial_size
    return {
        "suffixes": [".nii", ".nii.gz"],
        "channels": list(want.sequence_columns) or ["volume"],
        "size": [depth, height, width],
        "steps": [
            "read each channel's volume with nibabel: numpy.asanyarray(nibabel.load(path).dataobj), the voxel "
            "array with the header's scl_slope / scl_inter applied and no reorientation, trailing axes of "
            "length 1 dropped, as float64",
            "mask = voxels != 0 (after that scaling); inside the mask x = (v - min) / (max - min) over the "
            "masked voxels, clipped to [0, 1] (all 1 when max == min), stored as float32; outside the mask x = 0",
            f"centre crop or zero-pad each axis to {depth} x {height} x {width}: cropping starts at "
            "(have - want) // 2, padding puts the volume at (want - have) // 2",
            "uint8 = round(x * 255), halves to even (numpy.rint)",
            "stack the channels in the order of 'channels': (C, D, H, W)",
            SCALING,
        ],
    }


def _arrays(run: LoadedRun) -> dict[str, Any]:
    layouts = (
        ["(N, H, W) for one channel", "(N, H, W, C) channels last"]
        if run.want.spatial_dims == 2
        else ["(N, D, H, W) for one channel", "(N, D, H, W, C) channels last"]
    )
    return {
        "layouts": layouts,
        "steps": [
            "images already at the run's size (never resized), in the training npz's layout and channel order",
            "uint8 is used as it is; floats all in [0, 1] are multiplied by 255 first, then rounded to uint8",
            "move channels first",
            SCALING,
        ],
    }


def _known_rgb(dataset: object) -> bool:
    """Whether 3 channels are red, green, blue: a MedMNIST colour set or image files (converted to RGB);
    a user's npz may hold any 3 channels, and the file must not guess."""
    if isinstance(dataset, str):
        return dataset.lower() in MEDMNIST
    return isinstance(dataset, dict) and dataset.get("kind") in ("folder", "medmnist")


def _channel_order(run: LoadedRun) -> list[str]:
    if run.want.sequence_columns:
        return list(run.want.sequence_columns)
    if run.want.spatial_dims == 2 and run.want.in_channels == 3 and _known_rgb(run.cfg.dataset):
        return ["red", "green", "blue"]
    if run.want.in_channels == 1:
        return ["gray" if run.want.spatial_dims == 2 else "intensity"]
    return [f"channel {k} of the training data" for k in range(run.want.in_channels)]


def posthoc_part(run: LoadedRun) -> dict[str, Any] | None:
    """The run's temperature and tau with their formulas, and the offset ``tau * log(prior)`` per class."""
    record = run.posthoc
    if record is None:
        return None
    zero = torch.zeros(1, len(run.class_names), dtype=torch.float64)
    offset = (-adjust_logits(zero, record["train_counts"], record["tau"]))[0].tolist()
    return {
        "applied_in_model": False,
        "temperature": record["temperature"],
        "calibrated_probabilities": "softmax(logits / temperature)",
        "tau": record["tau"],
        "tau_metric": record["tau_metric"],
        "train_counts": record["train_counts"],
        "logit_offset": offset,
        "prediction_posthoc": "argmax(logits - logit_offset), logit_offset = tau * log(train_counts / sum)",
        "fit_on": "the run's validation split (imbal predict --posthoc applies the same values)",
    }


def preprocessing_spec(run: LoadedRun, fmt: str, model_file: str, parity: Parity) -> dict[str, Any]:
    """The whole ``preprocessing.json`` of an export (no machine paths: files are named relative to it)."""
    want = run.want
    axes = "NCHW" if want.spatial_dims == 2 else "NCDHW"
    crop = run.cfg.crop_size or None
    return {
        "format": fmt,
        "model_file": model_file,
        "imbal_version": __version__,
        "input": {
            "name": "images",
            "dtype": "float32",
            "layout": axes,
            "shape": ["batch", want.in_channels, *want.spatial_size],
            "spatial_dims": want.spatial_dims,
            "channels": want.in_channels,
            "channel_order": _channel_order(run),
            "value_range": [0.0, 1.0],
            "scaling": SCALING,
            "centre_crop": {"size": crop, "inside_model": True} if crop else None,
        },
        "decode": {"image_files": _image_files(run), "nifti_volumes": _volumes(run), "arrays": _arrays(run)},
        "outputs": {
            "logits": "float32 (batch, classes): raw scores, before any temperature or adjustment",
            "probabilities": "float32 (batch, classes): softmax(logits), what imbal predict writes without --posthoc",
        },
        "class_names": run.class_names,
        "posthoc": posthoc_part(run),
        "parity": {
            "images": parity.images,
            "source": parity.source,
            "batch_sizes": parity.batch_sizes,
            "max_abs_difference": parity.max_abs_difference,
            "tolerance": parity.tolerance,
            "max_logit_difference_relative": parity.max_logit_difference,
            "logit_tolerance_relative": LOGIT_TOLERANCE,
            "runtime": parity.runtime,
        },
    }
