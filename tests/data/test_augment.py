import pytest
import torch

from imbal.data import Augmentation
from imbal.data.augment import random_blur, random_crop, random_flips


@pytest.mark.parametrize("dims", [2, 3])
def test_shape_dtype_range_and_seed(dims):
    x = torch.rand(6, 2, *([10] * dims))
    aug = Augmentation(dims)
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    c = aug(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("dims", [2, 3])
def test_disabled_is_identity(dims):
    x = torch.rand(3, 1, *([8] * dims))
    assert torch.equal(Augmentation(dims, enabled=False)(x, torch.Generator()), x)


def test_p_zero_is_identity_and_p_one_changes_every_sample():
    x = torch.rand(8, 1, 12, 12)
    assert torch.allclose(Augmentation(2, p=0.0)(x, torch.Generator().manual_seed(0)), x)
    y = Augmentation(2, p=1.0)(x, torch.Generator().manual_seed(0))
    assert all(not torch.allclose(y[i], x[i]) for i in range(8))


def test_flips_are_flips():
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(64, 1, 1, 1)
    y = random_flips(x, torch.Generator().manual_seed(0), p=0.5)
    allowed = [x[0], x[0].flip(1), x[0].flip(2), x[0].flip(1).flip(2)]
    assert all(any(torch.equal(yi, a) for a in allowed) for yi in y)


def test_blur_preserves_mean_and_sigma0_is_identity():
    x = torch.rand(4, 1, 9, 9, 9)
    y = random_blur(x, torch.Generator().manual_seed(0), p=1.0)
    assert torch.allclose(y.mean(), x.mean(), atol=2e-2) and y.std() < x.std()
    assert torch.allclose(random_blur(x, torch.Generator(), p=1.0, sigma=(0.0, 0.0)), x, atol=1e-5)


def test_crop_windows_come_from_the_image():
    x = torch.arange(6 * 6 * 6.0).view(1, 1, 6, 6, 6).repeat(5, 1, 1, 1, 1)
    y = random_crop(x, torch.Generator().manual_seed(0), (4, 4, 4))
    assert y.shape == (5, 1, 4, 4, 4)
    for yi in y:
        d, h, w = (int(v) for v in torch.nonzero(x[0, 0] == yi[0, 0, 0, 0])[0])
        assert torch.equal(yi[0], x[0, 0, d : d + 4, h : h + 4, w : w + 4])
    aug = Augmentation(3, crop_size=4)
    assert aug.eval(x).shape == (5, 1, 4, 4, 4)
    with pytest.raises(ValueError, match=r"crop size \(8, 8, 8\) exceeds image size \(6, 6, 6\)"):
        random_crop(x, torch.Generator(), (8, 8, 8))


def test_wrong_dims_message():
    with pytest.raises(ValueError, match="with 3 spatial dims, got shape=\\(2, 1, 8, 8\\)"):
        Augmentation(3)(torch.rand(2, 1, 8, 8), torch.Generator())
