import pytest
import torch

from i2i_unlearn import UserError
from i2i_unlearn.data import apply_mask, make_mask, parse_task


def test_centre_hole_is_a_quarter_of_the_area_by_default():
    hole = make_mask("center", 2, 32, 4)
    assert hole.shape == (2, 1, 32, 32) and hole.dtype == torch.bool
    assert hole[0].sum() == 16 * 16
    assert hole[0, 0, 8:24, 8:24].all() and not hole[0, 0, :8].any()


def test_outpaint_keeps_a_centre_window():
    hole = make_mask("outpaint:0.5", 1, 32, 4)
    assert not hole[0, 0, 8:24, 8:24].any() and hole[0].sum() == 32 * 32 - 16 * 16


def test_random_masks_hide_whole_patches_equally_and_are_seeded():
    a = make_mask("random:0.75", 5, 32, 4, torch.Generator().manual_seed(1))
    b = make_mask("random:0.75", 5, 32, 4, torch.Generator().manual_seed(1))
    c = make_mask("random:0.75", 5, 32, 4, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a.flatten(1).sum(1) == 48 * 16).all()  # 48 of 64 patches, 16 pixels each
    patches = a[:, :, ::4, ::4]
    assert torch.equal(patches.repeat_interleave(4, 2).repeat_interleave(4, 3), a)


def test_apply_mask_fills_only_the_hole():
    images = torch.rand(2, 3, 16, 16)
    hole = make_mask("center", 2, 16, 4)
    masked = apply_mask(images, hole)
    assert torch.equal(masked[~hole.expand_as(images)], images[~hole.expand_as(images)])
    assert (masked[hole.expand_as(images)] == 0.5).all()


@pytest.mark.parametrize("spec", ["square", "center:2", "random:abc", "outpaint:0"])
def test_bad_mask_specs(spec):
    with pytest.raises(UserError):
        parse_task(spec)
