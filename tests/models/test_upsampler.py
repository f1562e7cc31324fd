import pytest
import torch
import torch.nn.functional as F

from avgen.models.upsampler import SpatialUpsampler


def tiny(**kwargs):
    return SpatialUpsampler(channels=8, num_blocks=2, norm_num_groups=4, **kwargs)


def test_doubles_height_and_width_and_starts_as_bicubic():
    model = tiny()
    x = torch.rand(2, 3, 5, 16, 12) * 2 - 1
    y = model(x)
    assert y.shape == (2, 3, 5, 32, 24)
    bicubic = F.interpolate(x.transpose(1, 2).flatten(0, 1), scale_factor=2, mode="bicubic", align_corners=False)
    torch.testing.assert_close(y, bicubic.unflatten(0, (2, 5)).transpose(1, 2))


def test_time_windows_give_the_untiled_result():
    torch.manual_seed(0)
    model = tiny()
    for p in model.parameters():  # a random, non-trivial network (conv_out is zero at init)
        p.data.normal_(0, 0.2)
    x = torch.rand(1, 3, 23, 8, 8) * 2 - 1
    full = model(x)
    bicubic = F.interpolate(x.transpose(1, 2).flatten(0, 1), scale_factor=2, mode="bicubic", align_corners=False)
    assert (full - bicubic.unflatten(0, (1, 23)).transpose(1, 2)).abs().mean() > 1e-2  # non-trivial network
    for window in (1, 4, 7, 22):
        torch.testing.assert_close(model(x, window=window), full, rtol=1e-4, atol=1e-5)
    # a smaller margin would change frames near window borders: the margin is needed
    windowed_too_short = torch.cat([model._upsample(x[:, :, s : s + 4]) for s in range(0, 23, 4)], dim=2)
    assert (windowed_too_short - full).abs().max() > 1e-3


def test_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(B, 3, F, H, W\)"):
        tiny()(torch.zeros(3, 4, 8, 8))
    with pytest.raises(ValueError, match="window"):
        tiny()(torch.zeros(1, 3, 4, 8, 8), window=0)


def reference_upsample(model: SpatialUpsampler, x: torch.Tensor) -> torch.Tensor:
    """The model's definition written with the Conv3d modules and per-frame GroupNorm on (B, C, F, H, W)."""

    def norm(layer, h):  # statistics per frame
        b, c, f, height, width = h.shape
        h = layer(h.transpose(1, 2).reshape(b * f, c, height, width))
        return h.reshape(b, f, c, height, width).transpose(1, 2)

    def conv(layer, h):
        return layer.temporal(layer.spatial(h))  # Conv3d (1, 3, 3), then Conv3d (3, 1, 1) with replicate padding

    h = conv(model.conv_in, x)
    for block in model.blocks:
        r = conv(block.conv1, F.silu(norm(block.norm1, h)))
        h = h + conv(block.conv2, F.silu(norm(block.norm2, r)))
    h = model.conv_up(F.silu(h))
    b, c4, f, height, width = h.shape
    h = F.pixel_shuffle(h.transpose(1, 2).flatten(0, 1), 2).unflatten(0, (b, f)).transpose(1, 2)
    residual = model.conv_out(F.silu(h))
    bicubic = F.interpolate(x.transpose(1, 2).flatten(0, 1), scale_factor=2, mode="bicubic", align_corners=False)
    return bicubic.unflatten(0, (b, f)).transpose(1, 2) + residual


def test_frames_in_the_batch_layout_equals_the_conv3d_definition_with_its_gradients():
    # the forward runs 2D convolutions on frames stacked in a channels-last batch (speed); it must stay the
    # 2.5D network its parameters define, with clips in a batch kept apart, in inference and in training
    torch.manual_seed(0)
    model = tiny()
    for p in model.parameters():
        p.data.normal_(0, 0.2)
    x = torch.rand(2, 3, 6, 8, 10) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_upsample(model, x), rtol=1e-4, atol=1e-5)
    x.requires_grad_(True)
    model(x).square().mean().backward()
    grads = [x.grad] + [p.grad for p in model.parameters()]
    x.grad = None
    model.zero_grad()
    reference_upsample(model, x).square().mean().backward()
    for got, expected in zip(grads, [x.grad] + [p.grad for p in model.parameters()]):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
