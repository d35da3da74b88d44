import pytest
import torch
from PIL import Image

from i2i_unlearn import UserError
from i2i_unlearn.data import FASHION_MNIST_CLASSES, fit_image, load_dataset, make_splits, subset_per_class


def test_fashion_mnist_is_padded_not_resampled():
    train = load_dataset("fashion-mnist", "train", 32, 1)
    test = load_dataset("fashion-mnist", "test", 32, 1)
    assert len(train) == 60000 and len(test) == 10000
    assert train.class_names == FASHION_MNIST_CLASSES
    image, label = train[0]
    assert image.shape == (1, 32, 32) and 0 <= label < 10
    assert image[:, :2].abs().sum() == 0 and image[:, :, -2:].abs().sum() == 0  # the padding border
    assert image.max() <= 1 and image.min() >= 0


def test_fit_image_letterboxes_and_converts_channels():
    wide = Image.new("RGB", (64, 32), (255, 0, 0))
    out = fit_image(wide, 16, 3)
    assert out.shape == (3, 16, 16)
    assert torch.allclose(out[:, 4:12, :], torch.tensor([1.0, 0, 0]).view(3, 1, 1).expand(3, 8, 16))
    assert out[:, :4].sum() == 0  # padded top band
    grey = fit_image(wide, 16, 1)
    assert grey.shape == (1, 16, 16)


def test_image_folder_split_is_disjoint_and_stable(image_folder):
    train = load_dataset(f"imagefolder:{image_folder}", "train", 32, 1, test_fraction=0.25)
    test = load_dataset(f"imagefolder:{image_folder}", "test", 32, 1, test_fraction=0.25)
    assert train.class_names == ["Pullover", "T-shirt-top", "Trouser"]
    assert len(train) + len(test) == 36 and len(test) > 0
    assert not set(train.ids) & set(test.ids)
    again = load_dataset(f"imagefolder:{image_folder}", "test", 32, 3, test_fraction=0.25)
    assert again.ids == test.ids
    assert again[0][0].shape == (3, 32, 32)


def test_image_folder_with_train_and_test_folders(tmp_path):
    for split in ("train", "test"):
        for name in ("a", "b"):
            (tmp_path / split / name).mkdir(parents=True)
            Image.new("L", (20, 20), 100).save(tmp_path / split / name / "x.png")
    train = load_dataset(f"imagefolder:{tmp_path}", "train", 16, 1)
    assert train.ids == ["train/a/x.png", "train/b/x.png"]
    assert load_dataset(f"imagefolder:{tmp_path}", "test", 16, 1).ids == ["test/a/x.png", "test/b/x.png"]


def test_undecodable_image_is_a_clear_error(tmp_path):
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "broken.png").write_bytes(b"not a png at all")
    data = load_dataset(f"imagefolder:{tmp_path}", "train", 16, 1, test_fraction=0.0)
    with pytest.raises(UserError, match="cannot decode image .*broken.png"):
        data[0]


def test_class_splits_separate_forget_and_retain():
    splits = make_splits("fashion-mnist", 32, 1, forget_classes=["trouser", "Bag"])
    train = splits.forget.dataset
    forget_labels = {train.labels[i] for i in splits.forget.indices}
    retain_labels = {train.labels[i] for i in splits.retain.indices}
    assert forget_labels == {1, 8} and not retain_labels & forget_labels
    assert len(splits.forget) == 12000 and len(splits.retain) == 48000
    assert {splits.forget_test.dataset.labels[i] for i in splits.forget_test.indices} == {1, 8}
    assert len(splits.retain_test) == 8000
    assert splits.forget_classes == ["Trouser", "Bag"]


def test_forget_list_retain_limit_and_retain_classes(tmp_path, image_folder):
    listing = tmp_path / "forget.txt"
    train = load_dataset(f"imagefolder:{image_folder}", "train", 32, 1)
    listing.write_text(f"{train.ids[0]}\n# a comment\n{image_folder / train.ids[1]}\n")
    splits = make_splits(f"imagefolder:{image_folder}", 32, 1, forget_list=str(listing))
    assert splits.forget.indices == [0, 1] and splits.forget_test.indices == [0, 1]
    assert 0 not in splits.retain.indices and 1 not in splits.retain.indices
    limited = make_splits("fashion-mnist", 32, 1, forget_classes=["Bag"], retain_classes=["Sneaker"],
                          retain_limit=100, seed=3)
    assert len(limited.retain) == 100
    assert {limited.retain.dataset.labels[i] for i in limited.retain.indices} == {7}


def test_proxy_retain_source(image_folder):
    splits = make_splits("fashion-mnist", 32, 1, forget_classes=["Bag"], retain_source=f"imagefolder:{image_folder}")
    assert splits.retain.dataset.name.startswith("imagefolder:")
    assert splits.info["retain_source"].startswith("imagefolder:")


@pytest.mark.parametrize("kwargs, message", [
    ({"forget_classes": ["Hat"]}, "unknown class 'Hat'"),
    ({"forget_classes": ["Bag"], "retain_classes": ["Bag", "Coat"]}, "overlap"),
    ({"forget_classes": ["Bag"], "retain_source": "fashion-mnist"}, "overlap"),
    ({}, "exactly one of"),
])
def test_bad_splits(kwargs, message):
    with pytest.raises(UserError, match=message):
        make_splits("fashion-mnist", 32, 1, **kwargs)


def test_empty_forget_list(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(UserError, match="forget"):
        make_splits("fashion-mnist", 32, 1, forget_list=str(empty))


def test_missing_fashion_mnist_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist"):
        load_dataset(f"fashion-mnist:{tmp_path}", "train")


def test_subset_per_class_is_seeded():
    splits = make_splits("fashion-mnist", 32, 1, forget_classes=["Bag"])
    a = subset_per_class(splits.retain_test, 5, seed=1)
    b = subset_per_class(splits.retain_test, 5, seed=1)
    assert a.indices == b.indices and len(a) == 45


def test_a_class_missing_from_the_test_folder_keeps_every_label(tmp_path):
    for split, classes in (("train", ("a", "b", "c")), ("test", ("a", "c"))):
        for name in classes:
            (tmp_path / split / name).mkdir(parents=True)
            Image.new("L", (8, 8), 10).save(tmp_path / split / name / "0.png")
    train = load_dataset(f"imagefolder:{tmp_path}", "train", 8, 1)
    test = load_dataset(f"imagefolder:{tmp_path}", "test", 8, 1)
    assert train.class_names == test.class_names == ["a", "b", "c"]
    assert [test.class_names[label] for label in test.labels] == ["a", "c"]  # c is still c, not b


def test_an_unreadable_folder_is_refused_not_read_as_empty(tmp_path, monkeypatch):
    import os

    for name in ("a", "b"):
        (tmp_path / name / "deeper").mkdir(parents=True)
        Image.new("L", (8, 8), 10).save(tmp_path / name / "deeper" / "0.png")
    locked = tmp_path / "b" / "deeper"
    scandir = os.scandir

    def refusing(path="."):  # what a folder without read permission does (root is never refused)
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    with pytest.raises(UserError, match=f"cannot read {locked}: Permission denied"):
        load_dataset(f"imagefolder:{tmp_path}", "train", 8, 1, test_fraction=0.0)
