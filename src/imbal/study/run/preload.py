"""What the warm server imports once per grid, then freezes; imported by the forkserver only.

Everything a cell's training imports, including what imbal imports late so that the CLI starts
fast (MONAI's networks, torchmetrics, the data loaders), so that no cell pays for an import (see
imbal.study.run.warm). A test trains a cell in a warm child and checks that it imported nothing heavy.
"""

import gc
import os
import signal

from imbal.processes import die_with_parent

# first, before the imports take seconds: the server (and so its cells) must not outlive the grid
die_with_parent(os.getppid(), signal.SIGKILL)

import monai.networks.nets  # noqa: E402, F401
import torch  # noqa: E402
import torchmetrics.classification  # noqa: E402, F401

import imbal.data.load  # noqa: E402
import imbal.engine.trainer  # noqa: E402
import imbal.study.run.grid  # noqa: E402, F401  (the cells' target)

if torch.cuda.is_initialized():
    # a process forked after CUDA was initialised cannot use CUDA: every cell would fail on a GPU
    raise RuntimeError("an import initialised CUDA in the warm server; its cells could not use the GPU")

# forked cells share the server's objects; a garbage collection in a cell would touch (and so copy)
# every one of them (measured: 0.6-0.8 s per full collection); frozen objects are never collected
gc.freeze()
