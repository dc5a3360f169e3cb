"""TorchScript: the exported graph as bytes (``torch.jit.trace``), and the loaded module that runs it back.

Tracing, not scripting: MONAI's ResNet has Python control flow that scripting does not take, and
every branch of it is fixed by the run's settings; the batch size stays free (the traced graph
reads it from its input). A C++ caller loads the file with ``torch::jit::load``.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import numpy as np
import torch

MODEL_FILE = "model.pt"


def to_torchscript(net: torch.nn.Module, example: torch.Tensor) -> bytes:
    """The serialised traced module of ``net`` on ``example``."""
    with warnings.catch_warnings():
        # the tracer's note on the model's shape check, a constant that holds for the fixed input size
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net.eval(), (example,))
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    return buf.getvalue()


def torchscript_runner(
    data: bytes, threads: int = 0
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``images (N, C, *spatial) float32 -> (logits, probabilities)`` by the loaded TorchScript module on the CPU.

    ``threads`` is accepted for symmetry with ONNX Runtime; torch's own thread setting applies.
    """
    module = torch.jit.load(io.BytesIO(data), map_location="cpu").eval()

    @torch.no_grad()
    def run(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, probabilities = module(torch.from_numpy(images))
        return logits.numpy(), probabilities.numpy()

    return run


def runtime_name() -> str:
    """What ran the parity check, for the preprocessing file and the card."""
    return f"TorchScript (torch {torch.__version__}, CPU)"
