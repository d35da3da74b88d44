"""Every bad input: a one-line error naming the problem and the fix, exit code 2, nothing overwritten."""

import pytest

from i2i_unlearn.cli import main


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("i2i-unlearn: error:")
    return err[0]


def _unlearn(checkpoint, out, *extra):
    return main(["unlearn", "--model", str(checkpoint), "--out", str(out), "--steps", "1", "--batch-size", "2",
                 *extra])


@pytest.mark.parametrize("extra, message", [
    (["--forget-classes", "Hat"], "unknown class 'Hat'"),
    (["--forget-classes", "Bag", "--retain-classes", "Bag"], "overlap"),
    (["--forget-classes", "Bag", "--retain-source", "fashion-mnist"], "overlap"),
    (["--forget-classes", "Bag", "--mask", "diamond"], "unknown mask"),
    (["--forget-classes", "Bag", "--dataset", "mnist"], "unknown dataset"),
])
def test_bad_requests(tiny_checkpoint, tmp_path, capsys, extra, message):
    assert _unlearn(tiny_checkpoint, tmp_path / "out", *extra) == 2
    assert message in _error_line(capsys)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_one_folder_spelt_two_ways_is_one_set(tiny_checkpoint, image_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(image_folder.parent)
    code = _unlearn(tiny_checkpoint, tmp_path / "out", "--dataset", f"imagefolder:./{image_folder.name}",
                    "--forget-classes", "Trouser",
                    "--retain-source", f"imagefolder:{image_folder}/../{image_folder.name}")
    assert code == 2 and "overlap" in _error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_empty_forget_set(tiny_checkpoint, tmp_path, capsys):
    empty = tmp_path / "forget.txt"
    empty.write_text("")
    assert _unlearn(tiny_checkpoint, tmp_path / "out", "--forget-list", str(empty)) == 2
    assert "forget set is empty" in _error_line(capsys)


def test_undecodable_image(tiny_checkpoint, tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
    (tmp_path / "data" / "a" / "bad.png").write_bytes(b"\x89PNG garbage")
    (tmp_path / "data" / "b" / "fine.txt").write_text("not an image suffix, ignored")
    code = _unlearn(tiny_checkpoint, tmp_path / "out", "--dataset", f"imagefolder:{tmp_path / 'data'}",
                    "--forget-classes", "a", "--retain-source", "fashion-mnist")
    assert code == 2 and "cannot decode image" in _error_line(capsys)


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_bad_checkpoint(tiny_checkpoint, tmp_path, capsys, damage):
    folder = tmp_path / "ckpt"
    if damage == "corrupt":
        folder.mkdir()
        (folder / "config.json").write_text((tiny_checkpoint / "config.json").read_text())
        (folder / "model.safetensors").write_bytes(b"truncated")
    assert _unlearn(folder, tmp_path / "out", "--forget-classes", "Bag") == 2
    assert "checkpoint" in _error_line(capsys)


def test_image_size_the_model_cannot_take(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "m"), "--image-size", "30", "--steps", "1"]) == 2
    assert "not a multiple of the patch size" in _error_line(capsys)


def test_existing_results_are_never_overwritten(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text("precious")
    assert _unlearn(tiny_checkpoint, out, "--forget-classes", "Bag") == 2
    assert "already holds results" in _error_line(capsys)
    assert (out / "metrics.json").read_text() == "precious"
    # The source checkpoint is a non-empty folder too, so unlearning can never write into it.
    before = (tiny_checkpoint / "model.safetensors").read_bytes()
    assert _unlearn(tiny_checkpoint, tiny_checkpoint, "--forget-classes", "Bag") == 2
    assert (tiny_checkpoint / "model.safetensors").read_bytes() == before
    capsys.readouterr()


def test_bad_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["unlearn", "--model", "x", "--out", "y", "--lr", "fast"])
    assert exit_info.value.code == 2
    assert "invalid float value" in _error_line(capsys)


@pytest.mark.parametrize("flag, value", [("--lr", "inf"), ("--lr", "nan"), ("--lr", "0"), ("--forget-alpha", "nan"),
                                         ("--retain-alpha", "inf"), ("--grad-clip", "-1"), ("--beta1", "2"),
                                         ("--weight-decay", "-0.1"), ("--batch-size", "0"),
                                         ("--warmup-steps", "-3")])
def test_nonsense_numbers_are_refused_before_anything_is_written(tiny_checkpoint, tmp_path, capsys, flag, value):
    assert _unlearn(tiny_checkpoint, tmp_path / "out", "--forget-classes", "Bag", flag, value) == 2
    assert flag in _error_line(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("steps", ["0", "5000"])
def test_sampling_steps_the_scheduler_cannot_take(tmp_path, capsys, steps):
    code = main(["evaluate", "--model", "bundled:diffusion", "--forget-classes", "Bag", "--sampling-steps", steps,
                 "--out", str(tmp_path / "out")])
    assert code == 2 and "--sampling-steps" in _error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_unknown_bundled_name(tmp_path, capsys):
    assert _unlearn("bundled:nothing-like-it", tmp_path / "out", "--forget-classes", "Bag") == 2
    assert "no bundled checkpoint" in _error_line(capsys)


def test_a_diffusers_unet_of_another_layout(tmp_path, capsys):
    from diffusers import UNet2DModel

    UNet2DModel(sample_size=16, in_channels=1, out_channels=1, block_out_channels=(8, 16), norm_num_groups=4,
                down_block_types=("DownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "UpBlock2D")).save_pretrained(tmp_path / "unet")
    assert _unlearn(tmp_path / "unet", tmp_path / "out", "--forget-classes", "Bag") == 2
    assert "not a conditional inpainting UNet" in _error_line(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag, value", [("--steps", "0"), ("--lr", "inf"), ("--lr", "nan"), ("--batch-size", "0"),
                                         ("--image-size", "0"), ("--weight-decay", "-1")])
def test_train_refuses_nonsense_numbers_before_anything_is_written(tmp_path, capsys, flag, value):
    assert main(["train", "--out", str(tmp_path / "m"), flag, value]) == 2
    assert flag in _error_line(capsys)
    assert not (tmp_path / "m").exists()


def test_a_run_racing_for_one_out_folder_never_overwrites_it(tmp_path):
    from i2i_unlearn import UserError
    from i2i_unlearn.records import atomic_out_dir

    out = tmp_path / "out"
    with pytest.raises(UserError, match="filled by another run"):
        with atomic_out_dir(out) as temporary:
            (temporary / "model.safetensors").write_bytes(b"ours")
            out.mkdir()
            (out / "theirs.json").write_text("{}")  # the other run finished first
    assert [p.name for p in out.iterdir()] == ["theirs.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left behind
    with atomic_out_dir(tmp_path / "new") as temporary:
        (temporary / "a").write_text("x")
    assert (tmp_path / "new" / "a").read_text() == "x"


def test_a_broken_test_image_stops_evaluate_before_its_folder_exists(tiny_checkpoint, tmp_path, capsys):
    from PIL import Image

    for split in ("train", "test"):
        for name in ("a", "b"):
            (tmp_path / "data" / split / name).mkdir(parents=True)
            for i in range(3):
                Image.new("L", (16, 16), 60 * i).save(tmp_path / "data" / split / name / f"{i}.png")
    (tmp_path / "data" / "test" / "b" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code = main(["evaluate", "--model", str(tiny_checkpoint), "--dataset", f"imagefolder:{tmp_path / 'data'}",
                 "--forget-classes", "a", "--eval-per-class", "3", "--out", str(tmp_path / "out")])
    assert code == 2 and "2.png" in _error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_a_loss_that_becomes_nan_saves_no_model_only_a_record(tiny_checkpoint, tmp_path, capsys):
    import json

    code = _unlearn(tiny_checkpoint, tmp_path / "out", "--forget-classes", "Bag", "--method", "max_loss",
                    "--lr", "1e30", "--grad-clip", "0", "--steps", "30", "--state-every", "5")
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar: one line
    assert code == 2 and last.startswith("i2i-unlearn: error: the loss became")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    failed = json.loads((tmp_path / "out.failed.json").read_text())
    assert "loss became" in failed["error"] and failed["config"]["lr"] == 1e30


def test_sweep_refuses_a_wrong_compare_file_before_any_work(tiny_checkpoint, tmp_path, capsys):
    wrong = tmp_path / "notes.json"
    wrong.write_text('{"something": "else"}')
    code = main(["sweep", "--model", str(tiny_checkpoint), "--forget-classes", "Bag", "--alphas", "0.1,0.2",
                 "--compare", str(wrong), "--out", str(tmp_path / "out")])
    assert code == 2 and "not a compare.json" in _error_line(capsys)
    assert not (tmp_path / "out").exists()
