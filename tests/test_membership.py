"""Membership attacks: the calibrated attack against a hand computation, and sets that never overlap."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset

from i2i_unlearn.data import load_dataset, make_splits, membership_sets, read_membership_lists
from i2i_unlearn.data.splits import pixel_key
from i2i_unlearn.errors import UserError
from i2i_unlearn.metrics.membership import (auc_difference_interval, auc_interval, describe_attacks, membership_attacks,
                                           roc_auc, tpr_at_fpr)


class Scripted(nn.Module):
    """A stand-in model whose loss on an image is read from its pixels: pixel 0 holds the image's
    difficulty d, pixel 1 says whether the model memorised it (1) or not (0); the loss is
    d * (1 - forgets * memorised), so a model with `memorises` = 0.5 halves its loss on members."""

    image_size, mask_cell, default_task = 4, 1, "center"

    def __init__(self, memorises: float):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.memorises = memorises

    def membership_scores(self, images, hole, generator=None, steps=None):
        difficulty, memorised = images[:, 0, 0, 0], images[:, 0, 0, 1]
        return -difficulty * (1 - self.memorises * memorised)


def scripted_set(difficulties, memorised):
    images = torch.zeros(len(difficulties), 1, 4, 4)
    images[:, 0, 0, 0] = torch.tensor(difficulties)
    images[:, 0, 0, 1] = memorised
    return TensorDataset(images, torch.zeros(len(difficulties)))


def test_calibrated_attack_matches_a_hand_computation():
    members = scripted_set([0.4, 0.6, 0.9], 1.0)
    non_members = scripted_set([0.1, 0.35, 0.5, 0.7], 0.0)
    result = membership_attacks(Scripted(0.5), members, non_members, reference=Scripted(0.0))
    # Loss attack, scores -loss: members -0.2, -0.3, -0.45; non-members -0.1, -0.35, -0.5, -0.7.
    # Member beats non-member in 3 + 3 + 2 of 12 pairs; no member scores above -0.1, the highest
    # non-member, so at 1% FPR (no false positive of 4) it catches none.
    assert {key: result["loss"][key] for key in ("auc", "tpr_at_1pct_fpr")} == {"auc": round(8 / 12, 4),
                                                                               "tpr_at_1pct_fpr": 0.0}
    # Calibrated, reference loss minus loss: members 0.2, 0.3, 0.45; every non-member 0: all 12
    # pairs, and a threshold above 0 catches every member with no false positive.
    assert result["calibrated"] == {"auc": 1.0, "auc_95": [1.0, 1.0], "tpr_at_1pct_fpr": 1.0}  # every resample too
    low, high = result["loss"]["auc_95"]
    assert low <= 8 / 12 <= high
    assert (result["members"], result["non_members"]) == (3, 4)
    assert "calibrated" not in membership_attacks(Scripted(0.5), members, non_members)


def test_the_auc_interval_has_the_width_the_mann_whitney_variance_predicts():
    # 32 members against 64 non-members drawn alike (AUC 0.5): Hanley and McNeil's standard error is
    # sqrt((A(1-A) + 31 (Q1 - A^2) + 63 (Q2 - A^2)) / (32 * 64)) with Q1 = A / (2 - A), Q2 = 2A^2 / (1 + A);
    # at A = 1/2 that is 0.0628, a 95% interval about 2 * 1.96 * 0.0628 = 0.246 wide.
    generator = torch.Generator().manual_seed(3)
    widths, covered = [], 0
    for _ in range(40):
        members, non_members = torch.randn(32, generator=generator), torch.randn(64, generator=generator)
        low, high = auc_interval(members, non_members, resamples=500)
        assert low <= roc_auc(members, non_members) <= high
        widths.append(high - low)
        covered += low <= 0.5 <= high
    assert np.mean(widths) == pytest.approx(0.246, rel=0.15)
    assert covered >= 34  # 95% coverage of the true AUC, 38 of 40 expected; 34 or fewer has probability < 2%
    assert auc_interval(members, non_members, seed=1) == auc_interval(members, non_members, seed=1)
    # one member (a list of one image is a valid request): no resampling can vary it, so no interval
    assert auc_interval(members[:1], non_members) is None
    one = membership_attacks(Scripted(0.5), scripted_set([0.4], 1.0), scripted_set([0.1, 0.7], 0.0))
    assert one["loss"]["auc_95"] is None and "AUC 0.500, TPR" in describe_attacks(one)


def test_the_difference_interval_resamples_both_models_on_the_same_images():
    generator = torch.Generator().manual_seed(0)
    members, non_members = torch.randn(32, generator=generator) + 0.5, torch.randn(64, generator=generator)
    assert auc_difference_interval((members, non_members), (members, non_members)) == [0.0, 0.0]
    # a shift of every score by the same amount changes no ranking: the difference is 0 in every resample,
    # though each AUC alone is uncertain by about +-0.12
    assert auc_difference_interval((members + 3, non_members + 3), (members, non_members)) == [0.0, 0.0]
    # members scored lower under the second model (a deletion): a difference whose interval excludes 0,
    # though the two AUCs' own intervals overlap
    deleted = (members - 0.6, non_members)
    low, high = auc_difference_interval((members, non_members), deleted)
    assert 0 < low <= roc_auc(members, non_members) - roc_auc(*deleted) <= high
    assert auc_interval(*deleted)[1] > auc_interval(members, non_members)[0]
    with pytest.raises(ValueError, match="same members"):
        auc_difference_interval((members, non_members), (members[:-1], non_members))


def test_tpr_at_low_fpr_counts_only_thresholds_without_false_positives():
    positive, negative = torch.tensor([5.0, 4.0, 2.0]), torch.tensor([3.0] + [0.0] * 99)
    assert tpr_at_fpr(positive, negative, 0.01) == 1.0  # 1 false positive of 100 is allowed: all 3 above 2
    assert tpr_at_fpr(positive, negative, 0.0) == pytest.approx(2 / 3)  # none allowed: only those above 3
    assert tpr_at_fpr(positive, torch.tensor([6.0] + [0.0] * 99), 0.0) == 0.0


def write_lists(tmp_path, members, non_members):
    (tmp_path / "members.txt").write_text("\n".join(members) + "\n")
    (tmp_path / "non.txt").write_text("\n".join(non_members) + "\n")
    return tmp_path / "members.txt", tmp_path / "non.txt"


def test_membership_lists_are_read_and_must_not_overlap(tmp_path):
    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    members, non_members = read_membership_lists(*write_lists(tmp_path, ["train/00003", "train/00007"],
                                                              ["test/00001"]), train, test)
    assert members.indices == [3, 7] and non_members.indices == [1]
    with pytest.raises(UserError, match="not a held-out test image"):  # a training image can't be a non-member
        read_membership_lists(*write_lists(tmp_path, ["train/00003"], ["train/00007"]), train, test)
    with pytest.raises(UserError, match="not a training image"):
        read_membership_lists(*write_lists(tmp_path, ["test/00002"], ["test/00001"]), train, test)
    with pytest.raises(UserError, match="names no image"):
        read_membership_lists(*write_lists(tmp_path, ["# nobody"], ["test/00001"]), train, test)


def test_a_non_member_copying_a_member_pixel_for_pixel_is_refused(tmp_path):
    """A folder whose test split holds a copy of a training image: refused as a non-member of it,
    and never drawn as one by the default sets."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in ("a", "b"):
            (tmp_path / split / name).mkdir(parents=True)
    pictures = [rng.integers(0, 256, (16, 16), dtype=np.uint8) for _ in range(8)]
    for i, picture in enumerate(pictures[:4]):
        Image.fromarray(picture).save(tmp_path / "train" / ("a" if i < 2 else "b") / f"{i}.png")
    Image.fromarray(pictures[0]).save(tmp_path / "test" / "a" / "copy.png")
    for i, picture in enumerate(pictures[4:]):
        Image.fromarray(picture).save(tmp_path / "test" / ("a" if i < 2 else "b") / f"{i}.png")
    spec = f"imagefolder:{tmp_path}"
    train, test = load_dataset(spec, "train", 16), load_dataset(spec, "test", 16)
    with pytest.raises(UserError, match="same image or same pixels"):
        read_membership_lists(*write_lists(tmp_path, ["train/a/0.png"], ["test/a/copy.png"]), train, test)
    (tmp_path / "forget.txt").write_text("train/a/0.png\ntrain/a/1.png\n")
    splits = make_splits(spec, 16, 1, forget_list=str(tmp_path / "forget.txt"))
    members, outside = membership_sets(splits)
    assert len(members) == len(outside) == 2
    copies = {pixel_key(members.dataset[i][0]) for i in members.indices}
    assert not copies & {pixel_key(outside.dataset[i][0]) for i in outside.indices}
    assert "test/a/copy.png" not in [outside.dataset.ids[i] for i in outside.indices]


def test_evaluate_runs_both_attacks_on_named_members_and_refuses_half_a_pair(tiny_checkpoint, tmp_path, capsys):
    from i2i_unlearn.cli import main

    members, non_members = write_lists(tmp_path, [f"train/{i:05d}" for i in range(6)],
                                       [f"test/{i:05d}" for i in range(5)])
    (tmp_path / "forget.txt").write_text("train/00000\ntrain/00001\n")
    flags = ["evaluate", "--model", str(tiny_checkpoint), "--forget-list", str(tmp_path / "forget.txt"),
             "--eval-per-class", "2", "--classifier", "none"]
    assert main([*flags, "--out", str(tmp_path / "half"), "--members", str(members)]) == 2
    assert "go together" in capsys.readouterr().err and not (tmp_path / "half").exists()
    assert main([*flags, "--out", str(tmp_path / "e"), "--members", str(members), "--non-members", str(non_members),
                 "--reference", str(tiny_checkpoint)]) == 0
    result = json.loads((tmp_path / "e" / "metrics.json").read_text())["membership"]
    assert (result["members"], result["non_members"]) == (6, 5)
    assert result["calibrated"]["auc"] == 0.5  # its own reference: every calibrated score is 0
    assert 0 <= result["loss"]["auc"] <= 1 and "calibrated attack: AUC 0.500" in capsys.readouterr().out
