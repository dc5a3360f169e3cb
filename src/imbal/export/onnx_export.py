"""ONNX: the exported graph as bytes, and an ONNX Runtime session on the CPU that runs it back.

onnx and onnxruntime are the optional extra ``imbal[export]``; without them ``--format onnx`` stops
with one line before any run is loaded. The graph is written by PyTorch's TorchScript-based
exporter (``dynamo=False``): it needs no package beyond onnx, exports these ResNets in under a
second, and its output passes the parity check; the batch axis is dynamic.
"""

from __future__ import annotations

import importlib
import io
import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np
import torch

from imbal.errors import ConfigError

MODEL_FILE = "model.onnx"
INPUT, OUTPUTS = "images", ("logits", "probabilities")
# supported by every onnxruntime since 1.14 (imbal[export] asks for >= 1.18)
OPSET = 17
PACKAGES = ("onnx", "onnxruntime")


def require() -> dict[str, ModuleType]:
    """The two packages of ``imbal[export]``, or one line naming those that are missing."""
    found, missing = {}, []
    for name in PACKAGES:
        try:
            found[name] = importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigError(
            f"--format onnx needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
            "installed: pip install 'imbal[export]' (or --format torchscript, which needs nothing more)"
        )
    return found


def to_onnx(net: torch.nn.Module, example: torch.Tensor) -> bytes:
    """The serialised ONNX model of ``net`` traced on ``example``, checked by ``onnx.checker``."""
    onnx = require()["onnx"]
    buf = io.BytesIO()
    dynamic = {name: {0: "batch"} for name in (INPUT, *OUTPUTS)}
    with warnings.catch_warnings():
        # the legacy exporter's deprecation notice, and the tracer's note on the model's shape check
        # (a constant in the graph, which holds: the spatial size and channels are fixed)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net.eval(),
            (example,),
            buf,  # type: ignore[arg-type]  # a file-like object is documented and works; the stub says path
            dynamo=False,
            input_names=[INPUT],
            output_names=list(OUTPUTS),
            dynamic_axes=dynamic,
            opset_version=OPSET,
        )
    data = buf.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data))
    return data


def onnx_runner(data: bytes, threads: int = 0) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``images (N, C, *spatial) float32 -> (logits, probabilities)``, each ``(N, C)``, by ONNX Runtime on the CPU.

    ``threads`` > 0 fixes ONNX Runtime's intra-op threads (the benchmark compares at equal threads).
    """
    ort = require()["onnxruntime"]
    options = ort.SessionOptions()
    if threads > 0:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])

    def run(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, probabilities = session.run(list(OUTPUTS), {INPUT: images})
        return np.asarray(logits), np.asarray(probabilities)

    return run


def runtime_name() -> str:
    """What ran the parity check, for the preprocessing file and the card."""
    ort = require()["onnxruntime"]
    return f"ONNX Runtime {ort.__version__} (CPUExecutionProvider)"
