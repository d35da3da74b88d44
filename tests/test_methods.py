"""The paper's loss: which samples each term sees, which parameters it trains, what it leaves alone."""

import pytest
import torch
from torch.utils.data import Subset, TensorDataset

from i2i_unlearn.data import Splits, make_splits
from i2i_unlearn.models import DEFAULT_BUNDLED, load_model
from i2i_unlearn.methods import AUTO, METHODS, create_method, noise_like, resolve_method
from i2i_unlearn.unlearn import UnlearnConfig, unlearn


def _images(n=4, seed=0, channels=1):
    return torch.rand(n, channels, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_terms_are_weighted_by_their_alphas(tiny_model):
    method = create_method("i2i", tiny_model, forget_alpha=0.3, retain_alpha=2.0)
    torch.manual_seed(5)
    loss, logs = method({"forget": _images(seed=1), "retain": _images(seed=2)})
    assert loss.item() == pytest.approx(0.3 * logs["forget_term"].item() + 2.0 * logs["retain_term"].item(),
                                        rel=1e-5)


@pytest.mark.parametrize("kind", ["normal", "uniform", "constant"])
def test_noise_stays_in_pixel_range(kind):
    images = _images(8)
    noise = noise_like(images, kind)
    assert noise.shape == images.shape and noise.min() >= 0 and noise.max() <= 1
    assert not torch.equal(noise, noise_like(images, kind)) or kind == "constant"


def _synthetic_splits(channels=1):
    forget = TensorDataset(_images(16, 1, channels), torch.zeros(16, dtype=torch.long))
    retain = TensorDataset(_images(16, 2, channels), torch.ones(16, dtype=torch.long))
    return Splits(forget, retain, forget, retain, ["f"], {"dataset": "synthetic"})


@pytest.mark.parametrize("family", sorted(DEFAULT_BUNDLED))
@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_short_run_moves_the_forget_term_the_intended_way(name, family, tmp_path):
    # The bundled models, because a barely trained one completes every image alike and Retain
    # Label's target would then already be met.
    model = load_model(f"bundled:{family}")
    splits = make_splits("fashion-mnist", 32, 1, forget_classes=["Trouser"], retain_limit=64)
    splits.forget = Subset(splits.forget.dataset, splits.forget.indices[:64])
    calibration = None
    if METHODS[name].needs_calibration:  # the 64 images as a forget list; calibrated by a model that never saw one
        calibration = f"bundled:{DEFAULT_BUNDLED[family]}-retrain-trouser-bag"
        (tmp_path / "forget.txt").write_text("\n".join(splits.forget.dataset.ids[i] for i in splits.forget.indices))
        splits = make_splits("fashion-mnist", 32, 1, forget_list=str(tmp_path / "forget.txt"), retain_limit=64)
    forget = torch.stack([splits.forget[i][0] for i in range(16)])
    retain = torch.stack([splits.retain[i][0] for i in range(16)])
    # A probe built on the original model measures the forget term with fixed masks and noise.
    probe = create_method(name, model, mask="center", noise="constant",
                          calibration=load_model(calibration) if calibration else None)

    def forget_term():
        torch.manual_seed(0)
        with torch.no_grad():
            return probe.forget_term(forget, probe.draw(forget), retain).item()

    before = forget_term()
    config = UnlearnConfig(method=name, steps=30, batch_size=16, lr=1e-3, warmup_steps=2, mask="center",
                           noise="constant", forget_alpha=1.0, retain_alpha=0.0, retain_budget=None,
                           calibration=calibration)
    unlearn(model, splits, config)  # changes the model in place
    # Every method's forget term is a loss it minimises (Max Loss: minus the task loss); the
    # retain term is off here so that the direction is the forget term's alone.
    assert forget_term() < before


def test_unlearning_changes_the_encoder_and_nothing_else(tiny_model, tmp_path):
    splits = _synthetic_splits()
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    model, record = unlearn(tiny_model, splits, UnlearnConfig(steps=15, batch_size=8, lr=1e-3, warmup_steps=2, retain_budget=None),
                            out=tmp_path / "out")
    after = model.state_dict()
    encoder_keys = {"hf.vit." + k for k in model.encoder.state_dict()}
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= encoder_keys
    decoder = {k for k in before if k.startswith("hf.decoder.")}
    assert decoder and not decoder & changed
    assert record["history"][-1]["forget_term"] < record["history"][0]["forget_term"]
    assert (tmp_path / "out" / "model.safetensors").exists()
    assert (tmp_path / "out" / "unlearn_record.json").exists()


def test_every_method_is_registered_with_a_scope():
    for name, cls in METHODS.items():
        assert cls.name == name and cls.scope in ("encoder", "model")


def test_auto_is_the_erasing_method_when_controlled_and_the_papers_when_fixed():
    assert resolve_method(AUTO, controlled=True) == "i2i_max_loss"
    assert resolve_method(AUTO, controlled=False) == "i2i"  # --fixed-alpha: the paper's exact run
    assert resolve_method("noisy_label", controlled=True) == "noisy_label"  # a named one is kept


def test_the_record_names_the_method_that_ran(tiny_model):
    config = UnlearnConfig(steps=2, batch_size=4, warmup_steps=0, check_every=1, val_images=4)
    _, record = unlearn(tiny_model, _synthetic_splits(), config)
    assert record["config"]["method"] == "i2i_max_loss"


def test_i2i_max_loss_is_the_papers_terms_plus_max_loss(family_model):
    forget, retain = _images(4, 1, family_model.channels), _images(4, 2, family_model.channels)
    combined = create_method("i2i_max_loss", family_model, mask=family_model.default_task)
    paper = create_method("i2i", family_model, mask=family_model.default_task)
    draw = combined.draw(forget)

    def seeded(function, *args):
        torch.manual_seed(3)  # the same noise image for the forget target in both methods
        with torch.no_grad():
            return function(*args).item()

    forget_task = seeded(family_model.task_loss, forget, draw)
    retain_task = seeded(family_model.task_loss, retain, draw)
    assert seeded(combined.forget_term, forget, draw, retain) == pytest.approx(
        seeded(paper.forget_term, forget, draw, retain) - forget_task, rel=1e-5, abs=1e-6)
    assert seeded(combined.retain_term, retain, draw) == pytest.approx(
        seeded(paper.retain_term, retain, draw) + retain_task, rel=1e-5, abs=1e-6)
    assert combined.scope == "model" and paper.scope == "encoder"  # the decoder trains too
