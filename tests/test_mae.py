import json

import pytest
import torch

from i2i_unlearn import UserError
from i2i_unlearn.data import make_mask
from i2i_unlearn.models import create_model, load_model
from conftest import TINY


def test_position_tables_are_filled_and_frozen(tiny_model):
    for table in (tiny_model.hf.vit.embeddings.position_embeddings, tiny_model.hf.decoder.decoder_pos_embed):
        assert table[0, 1:].abs().sum() > 0 and not table.requires_grad


def test_embedding_covers_visible_patches_only(tiny_model):
    images = torch.rand(2, 1, 16, 16)
    draw = tiny_model.draw(images, "center")  # 4 of 16 patches hidden
    assert tiny_model.embed(images, draw)[0].shape == (2, 1 + 12, TINY["hidden_size"])
    draw = tiny_model.draw(images, "random:0.75")
    assert tiny_model.embed(images, draw)[0].shape == (2, 1 + 4, TINY["hidden_size"])


def test_hole_content_does_not_reach_the_encoder(tiny_model):
    images = torch.rand(2, 1, 16, 16)
    draw = tiny_model.draw(images, "center")
    changed = torch.where(draw.hole, torch.rand_like(images), images)
    assert torch.allclose(tiny_model.embed(images, draw)[0], tiny_model.embed(changed, draw)[0])


def test_holes_of_different_sizes_share_a_batch(tiny_model):
    # ViTMAE hides as many patches in every image; smaller holes get a few extra hidden patches.
    images = torch.rand(6, 1, 16, 16)
    draw = tiny_model.draw(images, "hybrid", torch.Generator().manual_seed(0))
    counts = draw.values["patch_mask"].sum(1)
    assert torch.all(counts == counts[0])
    covered = torch.nn.functional.max_pool2d(draw.hole.float(), 4).flatten(1)
    assert torch.all(draw.values["patch_mask"] >= covered)
    out = tiny_model.complete(images, draw.hole)
    assert torch.equal(out[~draw.hole.expand_as(out)], images[~draw.hole.expand_as(out)])


def test_save_and_load_round_trip(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    images, hole = torch.rand(2, 1, 16, 16), make_mask("center", 2, 16, 4)
    assert torch.equal(loaded.complete(images, hole), tiny_model.complete(images, hole))
    tiny_model.save_pretrained(tmp_path / "half", dtype=torch.float16)
    half = load_model(tmp_path / "half")
    assert next(half.parameters()).dtype == torch.float32
    assert torch.allclose(half.complete(images, hole), tiny_model.complete(images, hole), atol=2e-2)


def test_public_checkpoint_normalisation_is_read(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "preprocessor_config.json").write_text(json.dumps(
        {"image_mean": [0.485], "image_std": [0.229]}))
    loaded = load_model(tmp_path / "m")
    assert loaded.pixel_mean.flatten().tolist() == pytest.approx([0.485])


def test_wrong_image_size_is_a_clear_error(tiny_model):
    with pytest.raises(UserError, match="do not fit this model"):
        tiny_model.complete(torch.rand(1, 1, 32, 32), make_mask("center", 1, 32, 4))


def test_image_size_must_be_a_multiple_of_the_patch():
    with pytest.raises(UserError, match="not a multiple of the patch size"):
        create_model("mae", image_size=30, patch_size=4)


@pytest.mark.parametrize("damage", ["missing", "config", "weights"])
def test_broken_checkpoints_are_clear_errors(tmp_path, tiny_model, damage):
    folder = tmp_path / "m"
    tiny_model.save_pretrained(folder)
    if damage == "missing":
        folder = tmp_path / "nowhere"
    elif damage == "config":
        (folder / "config.json").write_text("{broken")
    else:
        (folder / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="checkpoint"):
        load_model(folder)
