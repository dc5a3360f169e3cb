"""The examples in the public API's docstrings run, and every loss and sampler has one (issue #26, item 9).

``doctest`` runs per module here rather than through ``--doctest-modules``, which would import
every module of the package (the CLI, the study, the engine) on every test run.
"""

import doctest
import importlib
import pkgutil

import pytest

import imbal.data
import imbal.losses
from imbal.samplers import SAMPLERS, build_sampler

# the modules whose docstrings must show an example (a module that loses all of them fails)
WITH_EXAMPLES = [
    "imbal.losses.combined",
    "imbal.losses.metric_losses",
    "imbal.losses.modules",
    "imbal.losses.sample_losses",
    "imbal.samplers",
    "imbal.metrics",
    "imbal.posthoc",
    "imbal.calibration",
]
# the rest of the documented API (ruff's D rules): an example added there runs too
SUBMODULES = {
    f"{p.__name__}.{m.name}" for p in (imbal.losses, imbal.data) for m in pkgutil.iter_modules(p.__path__)
}
OTHERS = sorted((SUBMODULES | {"imbal.models"}) - set(WITH_EXAMPLES))


@pytest.mark.parametrize("name", WITH_EXAMPLES + OTHERS)
def test_docstring_examples_pass(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, (
        f"{result.failed} of {result.attempted} examples of {name} failed (output above)"
    )
    if name in WITH_EXAMPLES:
        assert result.attempted > 0, f"{name} lost its docstring examples"


EXAMPLE_OWNERS = [
    imbal.losses.soft_mcc_loss,
    imbal.losses.soft_f1_loss,
    imbal.losses.focal_loss,
    imbal.losses.logit_adjusted_ce,
    imbal.losses.cross_entropy,
    imbal.losses.SoftMCCLoss,
    imbal.losses.SoftF1Loss,
    imbal.losses.FocalLoss,
    imbal.losses.LogitAdjustedCE,
    imbal.losses.CrossEntropy,
    imbal.losses.CombinedLoss,
    imbal.losses.inverse_frequency_weights,
    imbal.losses.build_loss,
    *dict.fromkeys(spec.batches for spec in SAMPLERS.values()),  # "weights" shares the uniform order
    build_sampler,
]


@pytest.mark.parametrize("obj", EXAMPLE_OWNERS, ids=lambda o: o.__name__)
def test_every_loss_and_sampler_shows_an_example(obj):
    assert ">>> " in (obj.__doc__ or ""), f"{obj.__qualname__} has no runnable example in its docstring"


def test_every_loss_term_module_is_covered():
    # a loss added to the table gets an example too: its module type must be in the list above
    from imbal.losses import LOSS_TERMS, LossSettings

    settings = LossSettings(class_counts=[3, 1])
    built = {type(term.build(settings)) for term in LOSS_TERMS.values()}
    assert built <= set(EXAMPLE_OWNERS)
