import pytest
import torch

from imbal.models import build_model


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("arch", ["resnet18", "resnet34", "resnet50"])
def test_logits_and_features(dims, arch):
    m = build_model(arch, dims, 2, 4, widen_factor=0.25).eval()
    x = torch.rand(3, 2, *([16] * dims))
    assert m(x).shape == (3, 4)
    d = m.features(x).shape[1]
    assert d == m.feature_dim == (512 if arch == "resnet50" else 128)


@pytest.mark.parametrize("small", [True, False])
def test_stems(small):
    m = build_model("resnet18", 2, 3, 5, small_input=small)
    assert m.backbone.conv1.stride == ((1, 1) if small else (2, 2))
    assert m.backbone.no_max_pool is small


def test_rebuild_from_config():
    m = build_model("resnet18", 3, 1, 2, widen_factor=0.25)
    m2 = type(m)(**m.config)
    m2.load_state_dict(m.state_dict())
    x = torch.rand(2, 1, 12, 12, 12)
    assert torch.allclose(m.eval()(x), m2.eval()(x))


def test_bad_input_message():
    m = build_model("resnet18", 2, 3, 5, widen_factor=0.25)
    with pytest.raises(
        ValueError, match=r"expected images \(N, 3, \*spatial\) with 4 dims, got shape=\(2, 1, 8, 8\)"
    ):
        m(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="unknown arch 'vgg'"):
        build_model("vgg", 2, 3, 5)
