"""Whole-image degradations (data/degradations.py) and the tasks built on them: what each T(x) does,
which specs and models are refused, and how a diffusion checkpoint trained for one uses it."""

import pytest
import torch

from i2i_unlearn import UserError
from i2i_unlearn.data import degrade, make_mask, parse_task
from i2i_unlearn.data.degradations import canonical, check_degradation
from i2i_unlearn.methods import METHODS
from i2i_unlearn.models import FAMILIES, bundled_for_task, create_model, load_model
from i2i_unlearn.models.base import Draw

TINY = FAMILIES["diffusion"].tiny_settings()


def _square(size=16, channels=1):
    """A bright square on black: its edges are where a sketch must draw lines."""
    images = torch.zeros(1, channels, size, size)
    images[..., 4:12, 4:12] = 0.8
    return images


@pytest.mark.parametrize("spec", ["sketch", "lowres", "lowres:2", "jpeg", "jpeg:50", "colourise"])
def test_a_degradation_keeps_the_shape_and_the_pixel_range(spec):
    channels = 3 if spec == "colourise" else 1
    images = torch.rand(3, channels, 16, 16, generator=torch.Generator().manual_seed(0))
    degraded = degrade(spec, images)
    assert degraded.shape == images.shape and degraded.dtype == images.dtype
    assert degraded.min() >= 0 and degraded.max() <= 1
    assert not torch.equal(degraded, images)
    assert torch.equal(degrade(spec, images), degraded)  # deterministic


def test_a_sketch_draws_dark_lines_on_the_edges_only():
    sketch = degrade("sketch", _square())[0, 0]
    assert sketch[0, 0] == 1 and sketch[8, 8] == 1  # flat background and flat inside: white paper
    assert (sketch[4:12, 3:5] == 0).any() and (sketch[3:5, 4:12] == 0).any()  # lines along the square's border
    assert torch.equal(degrade("sketch", torch.full((1, 1, 16, 16), 0.3)), torch.ones(1, 1, 16, 16))  # no edge


def test_a_higher_sketch_threshold_keeps_fewer_lines():
    images = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    assert (degrade("sketch:0.6", images) == 0).sum() < (degrade("sketch:0.2", images) == 0).sum()


def test_lowres_keeps_a_flat_image_and_loses_detail():
    flat = torch.full((1, 1, 16, 16), 0.4)
    assert torch.allclose(degrade("lowres:4", flat), flat, atol=1e-6)
    checker = (torch.arange(16).view(-1, 1) + torch.arange(16).view(1, -1)) % 2
    blurred = degrade("lowres:4", checker.float().view(1, 1, 16, 16))
    assert blurred.std() < 0.05  # a one-pixel pattern is gone at a quarter of the resolution


def test_colourise_gives_the_luma_in_every_channel():
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    grey = degrade("colourise", images)
    luma = 0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2]
    for channel in range(3):
        assert torch.allclose(grey[:, channel], luma, atol=1e-6)


def test_jpeg_loses_more_at_a_lower_quality():
    ramp = torch.linspace(0, 1, 32)
    images = torch.stack([ramp.view(1, -1).expand(32, 32), ramp.view(-1, 1).expand(32, 32),
                          (ramp.view(1, -1) * ramp.view(-1, 1))]).unsqueeze(0)  # smooth colour, as photos are
    images[..., 10:20, 10:20] = 0.9  # and one sharp edge
    error = {quality: float(((degrade(f"jpeg:{quality}", images) - images) ** 2).mean()) for quality in (5, 90)}
    assert error[5] > 2 * error[90]


@pytest.mark.parametrize("spec, message", [
    ("lowres:1", "at least 2"), ("lowres:2.5", "integer"), ("lowres:x", "integer"), ("jpeg:0", "from 1 to 95"),
    ("jpeg:100", "from 1 to 95"), ("sketch:1.5", "between 0 and 1"), ("sketch:nan", "between 0 and 1"),
    ("colourise:1", "takes no parameter"), ("sketchy", "unknown task")])
def test_a_nonsense_degradation_is_refused_in_one_line(spec, message):
    with pytest.raises(UserError, match=message):
        parse_task(spec)


def test_a_degradation_must_fit_the_images():
    with pytest.raises(UserError, match="divisible by 5"):
        check_degradation("lowres:5", 32, 1)
    with pytest.raises(UserError, match="colour"):
        check_degradation("colourise", 32, 1)
    check_degradation("lowres:8", 32, 1)


def test_a_degradation_task_has_the_whole_image_as_its_hole():
    assert make_mask("sketch", 2, 8).all() and make_mask("sketch", 2, 8).shape == (2, 1, 8, 8)
    assert canonical("lowres") == "lowres:4" and canonical("sketch:0.30") == canonical("sketch")


def test_the_condition_of_a_degradation_model_is_its_degraded_input():
    model = create_model("diffusion", image_size=16, channels=1, degradation="lowres:2", **TINY)
    images = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(4))
    draw = model.draw(images, generator=torch.Generator().manual_seed(0))
    assert draw.hole.all()
    inputs = model._inputs(images, draw)
    assert torch.allclose(inputs[:, 1:2], degrade("lowres:2", images) * 2 - 1)  # the condition channel
    assert (inputs[:, 2] == 1).all()  # the mask channel: every pixel is produced


def test_a_degradation_model_sees_the_image_only_through_its_degradation():
    """Two images with one sketch get one output: nothing else of the image reaches the model."""
    model = create_model("diffusion", image_size=16, channels=1, degradation="sketch", **TINY)
    square = _square()
    brighter = square * 1.2  # the same edges (the threshold is relative), other pixel values
    assert torch.equal(degrade("sketch", square), degrade("sketch", brighter))
    hole = make_mask("sketch", 1, 16)
    first = model.complete(square, hole, torch.Generator().manual_seed(0), steps=3)
    second = model.complete(brighter, hole, torch.Generator().manual_seed(0), steps=3)
    assert torch.equal(first, second)
    noise = Draw(hole, {"timesteps": torch.tensor([5]), "noise": torch.randn(1, 1, 16, 16),
                        "condition_noise": torch.randn(1, 1, 16, 16)})
    assert model.embedding_distance(model.embed(square, noise), model.embed(brighter, noise)) > 0  # the target differs


def test_a_degradation_is_saved_with_the_checkpoint(tmp_path):
    model = create_model("diffusion", image_size=16, channels=3, degradation="colourise", **TINY)
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.degradation == "colourise" and loaded.default_task == "colourise"
    assert loaded.training_task == "colourise"
    hole_model = create_model("diffusion", image_size=16, channels=3, **TINY)
    assert hole_model.degradation is None and hole_model.default_task == "center"


@pytest.mark.parametrize("task, message", [("center", "no hole to fill"), ("lowres", "trained for sketch:0.3")])
def test_a_degradation_model_refuses_other_tasks(task, message):
    model = create_model("diffusion", image_size=16, channels=1, degradation="sketch", **TINY)
    model.check_task("sketch:0.3")
    with pytest.raises(UserError, match=message):
        model.check_task(task)


def test_a_hole_model_and_a_masked_family_refuse_degradations():
    with pytest.raises(UserError, match="not trained for sketch"):
        create_model("diffusion", image_size=16, channels=1, **TINY).check_task("sketch")
    with pytest.raises(UserError, match="fills masked images"):
        create_model("mae", image_size=16, channels=1, **FAMILIES["mae"].tiny_settings()).check_task("lowres")
    with pytest.raises(UserError, match="fills masked images"):
        bundled_for_task("vqgan", "sketch")
    assert bundled_for_task("mae", "center").name == "mae-fashion-mnist"


@pytest.fixture(scope="module")
def sketch_checkpoint(tmp_path_factory):
    """A tiny diffusion model trained for a few steps to draw Fashion-MNIST images from their sketches."""
    from i2i_unlearn.train import TrainConfig, train

    folder = tmp_path_factory.mktemp("sketch") / "model"
    train(TrainConfig(family="diffusion", task="sketch", image_size=16, model=TINY, steps=4, batch_size=8,
                      warmup_steps=1), folder)
    return folder


def test_a_sketch_model_is_trained_unlearned_and_evaluated_on_its_task(sketch_checkpoint, tmp_path):
    import json

    from i2i_unlearn.cli import main

    record = json.loads((sketch_checkpoint / "train_record.json").read_text())
    assert record["config"]["task"] == "sketch" and record["config"]["mask"] == "sketch:0.3"
    assert main(["unlearn", "--model", str(sketch_checkpoint), "--forget-classes", "Trouser", "--steps", "2",
                 "--batch-size", "4", "--check-every", "1", "--val-images", "4", "--out", str(tmp_path / "u")]) == 0
    unlearned = json.loads((tmp_path / "u" / "unlearn_record.json").read_text())
    assert unlearned["config"]["mask"] == "sketch:0.3" and unlearned["control"]["task"] == "sketch:0.3"
    assert main(["evaluate", "--model", str(tmp_path / "u"), "--forget-classes", "Trouser", "--eval-per-class", "2",
                 "--sampling-steps", "2", "--out", str(tmp_path / "e")]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["task"] == "sketch:0.3"
    for values in metrics["metrics"].values():  # no hole: the error is over the whole image
        assert values["mse"] == pytest.approx(values["hole_mse"])
    assert (tmp_path / "e" / "samples.png").is_file()


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--task", "center"], "no hole to fill"), (["evaluate", "--task", "jpeg"], "trained for sketch"),
    (["unlearn", "--mask", "box"], "no hole to fill"), (["evaluate", "--retrained", "bundled:diffusion"], "32px"),
    (["compare", "--task", "lowres:3"], "divisible by 3")])
def test_a_task_the_checkpoint_cannot_do_is_refused_before_anything_is_written(sketch_checkpoint, tmp_path, capsys,
                                                                               argv, message):
    from test_cli_errors import _refused

    command, *extra = argv
    _refused(capsys, [command, "--model", str(sketch_checkpoint), "--forget-classes", "Bag", "--out",
                      str(tmp_path / "o"), *extra], tmp_path, message)


@pytest.mark.parametrize("argv, message", [
    (["train", "--family", "mae", "--task", "sketch"], "fills masked images"),
    (["train", "--family", "diffusion", "--task", "colourise"], "colour"),
    (["train", "--family", "diffusion", "--task", "sketch", "--mask", "center"], "drop --mask"),
    (["train", "--family", "diffusion", "--mask", "jpeg"], "--task jpeg"),
    (["train", "--family", "diffusion", "--task", "jpeg:500"], "from 1 to 95"),
    (["train", "--family", "diffusion", "--task", "sketch", "--init", "bundled:mae"], "--family mae"),
    (["demo", "--model", "vqgan", "--task", "sketch"], "fills masked images"),
    (["demo", "--model", "diffusion", "--task", "jpeg:20"], "no bundled diffusion model for jpeg:20"),
    (["evaluate", "--model", "bundled", "--forget-classes", "Bag", "--task", "lowres"], "fills masked images")])
def test_a_task_a_family_or_bundle_cannot_do_is_refused_in_one_line(tmp_path, capsys, argv, message):
    from test_cli_errors import _refused

    _refused(capsys, [*argv, "--out", str(tmp_path / "o")], tmp_path, message)


def test_the_samples_demo_refuses_a_task_its_models_were_not_trained_for(tmp_path, capsys):
    from test_cli_errors import _refused

    _refused(capsys, ["demo", "--scenario", "samples", "--model", "diffusion", "--task", "sketch", "--out",
                      str(tmp_path / "o")], tmp_path, "not trained for sketch")


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_trains_a_degradation_model_on_its_degradation(name, make_method):
    model = create_model("diffusion", image_size=16, channels=1, degradation="jpeg", **TINY)
    method = make_method(name, model)
    assert method.mask == "jpeg:10" and method.draw(torch.rand(2, 1, 16, 16)).hole.all()
