"""Memorising listed images (the subject of a sample-level deletion) and choosing a private set."""

import json

import torch

from i2i_unlearn.cli import main
from i2i_unlearn.data import load_dataset
from i2i_unlearn.memorise import MemoriseConfig, choose_private, memorise
from i2i_unlearn.models import load_model


def test_memorise_fine_tunes_the_generator_on_listed_and_ordinary_images(family_checkpoint, tmp_path):
    listing = tmp_path / "private.txt"
    listing.write_text("train/00010\ntrain/00020\ntrain/00030\ntrain/00040\n")
    record = memorise(family_checkpoint, MemoriseConfig(images=str(listing), steps=3, batch_size=8, warmup_steps=0),
                      tmp_path / "out")
    assert record["config"]["listed_per_step"] == 2  # rate 0.5 x 4 listed images
    assert record["data"]["listed"] == ["train/00010", "train/00020", "train/00030", "train/00040"]
    assert record["data"]["exposures_per_listed_image"] == 1.5
    before, after = load_model(family_checkpoint), load_model(tmp_path / "out")
    changed = [not torch.equal(a, b) for a, b in zip(before.generator_parameters(), after.generator_parameters())]
    assert any(changed)
    saved = json.loads((tmp_path / "out" / "memorise_record.json").read_text())
    assert saved["kind"] == "memorise" and (tmp_path / "out" / "README.md").is_file()


def test_a_listed_test_image_is_refused_and_nothing_written(tiny_checkpoint, tmp_path, capsys):
    listing = tmp_path / "private.txt"
    listing.write_text("test/00001\n")
    code = main(["memorise", "--model", str(tiny_checkpoint), "--images", str(listing), "--out", str(tmp_path / "o")])
    assert code == 2 and "held-out test image" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert main(["memorise", "--model", str(tiny_checkpoint), "--images", str(listing), "--out", str(tmp_path / "o"),
                 "--rate", "0"]) == 2


def test_a_private_set_pairs_training_images_with_unseen_images_of_the_same_classes():
    private, outside = choose_private("fashion-mnist", 20, seed=3, image_size=28)
    assert private == choose_private("fashion-mnist", 20, seed=3, image_size=28)[0]
    assert len(private) == len(outside) == 20 and all(i.startswith("train/") for i in private)
    train, test = load_dataset("fashion-mnist", "train", 28), load_dataset("fashion-mnist", "test", 28)
    labels = sorted(train.labels[train.ids.index(i)] for i in private)
    assert labels == sorted(test.labels[test.ids.index(i)] for i in outside)
    assert choose_private("fashion-mnist", 20, seed=4, image_size=28)[0] != private


def test_deleting_some_memorised_images_keeps_the_others_in_the_retain_mix_they_were_trained_in(tiny_checkpoint,
                                                                                                 tmp_path, capsys):
    listing = tmp_path / "private.txt"
    listing.write_text("train/00010\ntrain/00020\ntrain/00030\ntrain/00040\n")
    memorise(tiny_checkpoint, MemoriseConfig(images=str(listing), steps=2, batch_size=8, warmup_steps=0),
             tmp_path / "memorised")
    (tmp_path / "forget.txt").write_text("train/00010\ntrain/00020\n")
    flags = ["--steps", "2", "--batch-size", "4", "--fixed-alpha"]
    assert main(["unlearn", "--model", str(tmp_path / "memorised"), "--out", str(tmp_path / "u1"),
                 "--forget-list", str(tmp_path / "forget.txt"), *flags]) == 0
    request = json.loads((tmp_path / "u1" / "certificate.json").read_text())["data"]["request"]
    emphasis = request["retain_emphasis"]
    assert emphasis["images"] == ["train/00030", "train/00040"] and emphasis["share"] == 0.125  # 0.5 x 2 of 8
    assert emphasis["repeats"] == round(0.125 * (60000 - 4) / (0.875 * 2))
    # a second request from the first's output: the first's images stay out, the kept ones stay emphasised
    (tmp_path / "forget2.txt").write_text("train/00030\n")
    assert main(["unlearn", "--model", str(tmp_path / "u1"), "--out", str(tmp_path / "u2"),
                 "--forget-list", str(tmp_path / "forget2.txt"), *flags]) == 0
    second = json.loads((tmp_path / "u2" / "certificate.json").read_text())["data"]["request"]
    assert second["retain_excludes"] == ["train/00010", "train/00020"]
    assert second["retain_emphasis"]["images"] == ["train/00040"] and second["retain_emphasis"]["share"] == 0.0625
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "u2")]) == 0  # the retain set is rebuilt the same way
