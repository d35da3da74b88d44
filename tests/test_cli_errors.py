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
    (["--forget-classes", "Bag", "--mask", "diamond"], "unknown task"),
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


def _listing(root):
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def _refused(capsys, argv, root, message):
    """argv ends in exit 2 with one line holding `message`, and nothing new under `root`."""
    before = _listing(root)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses while parsing
        code = exc.code
    assert code == 2
    line = _error_line(capsys)
    assert message in line
    assert _listing(root) == before
    return line


@pytest.mark.parametrize("flag, value", [("--steps", "0"), ("--lr", "nan"), ("--lr", "0"), ("--width", "0"),
                                         ("--batch-size", "-4"), ("--seed", "-1"), ("--image-size", "0")])
def test_train_classifier_checks_its_numbers(tmp_path, capsys, flag, value):
    _refused(capsys, ["train-classifier", "--out", str(tmp_path / "c"), flag, value], tmp_path, flag)


@pytest.mark.parametrize("argv, flag", [
    (["evaluate", "--batch-size", "0"], "--batch-size"), (["evaluate", "--seed", str(2 ** 40)], "--seed"),
    (["evaluate", "--eval-per-class", "0"], "--eval-per-class"), (["unlearn", "--seed", "-3"], "--seed"),
    (["unlearn", "--retain-limit", "0"], "--retain-limit"), (["unlearn", "--check-every", "0"], "--check-every"),
    (["relearn-probe", "--eval-every", "0"], "--eval-every"), (["relearn-probe", "--lr", "inf"], "--lr")])
def test_every_command_checks_the_numbers_it_takes(tiny_checkpoint, tmp_path, capsys, argv, flag):
    command, *extra = argv
    _refused(capsys, [command, "--model", str(tiny_checkpoint), "--forget-classes", "Bag", "--out",
                      str(tmp_path / "o"), *extra], tmp_path, flag)


@pytest.mark.parametrize("argv", [["sweep", "--alphas", ""], ["compare", "--methods", ","],
                                  ["unlearn", "--forget-classes", " , "]])
def test_a_list_that_names_nothing_is_refused(tiny_checkpoint, tmp_path, capsys, argv):
    command, *extra = argv
    base = ["--forget-classes", "Bag"] if "--forget-classes" not in extra else []
    _refused(capsys, [command, "--model", str(tiny_checkpoint), "--out", str(tmp_path / "o"), *base, *extra],
             tmp_path, "names nothing")


@pytest.mark.parametrize("alphas, message", [("nan", "--alphas"), ("-1", "--alphas"), ("0.1,0.1", "repeats")])
def test_sweep_checks_every_alpha_before_its_folder_exists(tiny_checkpoint, tmp_path, capsys, alphas, message):
    _refused(capsys, ["sweep", "--model", str(tiny_checkpoint), "--forget-classes", "Bag", "--alphas", alphas,
                      "--out", str(tmp_path / "s")], tmp_path, message)


@pytest.mark.parametrize("argv, message", [
    (["unlearn", "--fixed-alpha", "--retain-budget", "0.1"], "--retain-budget sets the control"),
    (["unlearn", "--fixed-alpha", "--forget-target", "3"], "--forget-target sets the control"),
    (["sweep", "--val-images", "8"], "--val-images sets the control"),
    (["sweep", "--forget-alpha", "0.5"], "--forget-alpha has no effect on a sweep")])
def test_a_flag_the_mode_ignores_is_refused(tiny_checkpoint, tmp_path, capsys, argv, message):
    command, *extra = argv
    _refused(capsys, [command, "--model", str(tiny_checkpoint), "--forget-classes", "Bag", "--out",
                      str(tmp_path / "o"), *extra], tmp_path, message)


def test_a_batch_beyond_the_machines_memory_is_refused_with_an_estimate(tiny_checkpoint, tmp_path, capsys):
    _refused(capsys, ["train", "--out", str(tmp_path / "m"), "--batch-size", "100000000", "--image-size", "1024"],
             tmp_path, "GiB for the pixels of one batch alone")
    _refused(capsys, ["unlearn", "--model", str(tiny_checkpoint), "--forget-classes", "Bag", "--out",
                      str(tmp_path / "u"), "--batch-size", str(10 ** 12)], tmp_path, "this machine has")


def test_an_error_raised_while_parsing_is_one_line(tmp_path, capsys):
    _refused(capsys, ["train", "--out", str(tmp_path / "m"), "--model-config", "[1, 2]"], tmp_path,
             "--model-config must be a JSON object")


def test_report_into_an_unusable_place_writes_nothing(tiny_checkpoint, tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    run = tmp_path / "run"
    assert main(["evaluate", "--model", str(tiny_checkpoint), "--forget-classes", "Bag", "--eval-per-class", "2",
                 "--out", str(run), "--classifier", "none"]) == 0
    capsys.readouterr()
    _refused(capsys, ["report", str(run), "--out", str(tmp_path / "a-file" / "deeper" / "r.html")], tmp_path,
             "is not a folder")


def _one_image_list(image_folder, tmp_path, split):
    """A forget list naming the first image of `split` of the image folder."""
    from i2i_unlearn.data import load_dataset

    listing = tmp_path / "forget.txt"
    listing.write_text(load_dataset(f"imagefolder:{image_folder}", split, 16, 1).ids[0] + "\n")
    return ["--dataset", f"imagefolder:{image_folder}", "--forget-list", str(listing)]


def test_a_held_out_test_image_in_a_forget_list_is_called_what_it_is(tiny_checkpoint, image_folder, tmp_path, capsys):
    _refused(capsys, ["unlearn", "--model", str(tiny_checkpoint), *_one_image_list(image_folder, tmp_path, "test"),
                      "--out", str(tmp_path / "u")], tmp_path, "is a held-out test image")


def test_evaluating_a_forget_list_of_one_image_is_refused(tiny_checkpoint, image_folder, tmp_path, capsys):
    _refused(capsys, ["evaluate", "--model", str(tiny_checkpoint), *_one_image_list(image_folder, tmp_path, "train"),
                      "--classifier", "none", "--out", str(tmp_path / "e")], tmp_path, "the forget list has 1 image")


@pytest.mark.parametrize("setting, value", [("hidden_size", 48), ("patch_size", 2)])
def test_weights_of_another_size_than_the_config_name_the_tensor_and_both_shapes(tiny_checkpoint, tmp_path, capsys,
                                                                                 setting, value):
    import json
    import shutil

    folder = tmp_path / "edited"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config[setting] = value
    (folder / "config.json").write_text(json.dumps(config))
    line = _refused(capsys, ["evaluate", "--model", str(folder), "--forget-classes", "Bag", "--out",
                             str(tmp_path / "e")], folder, "has shape (")
    assert "report" not in line and "config.json" in line


@pytest.mark.parametrize("value, message", [("fast", "'fast' is no attacker"), ("default,default", "repeats")])
def test_an_unknown_or_repeated_relearning_attacker_is_refused_before_any_work(tmp_path, capsys, value, message):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--relearn", value]) == 2
    assert message in _error_line(capsys)
    assert not (tmp_path / "demo").exists()


def test_a_file_the_system_will_not_let_us_read_is_named_in_one_line(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    # Root reads every file whatever its mode, so the refusal is simulated where any file is read.
    import builtins
    import pathlib

    config = str(tiny_checkpoint / "config.json")
    real_open, real_read = builtins.open, pathlib.Path.read_text

    def guarded_open(file, *args, **kwargs):
        if str(file) == config:
            raise PermissionError(13, "Permission denied", config)
        return real_open(file, *args, **kwargs)

    def guarded_read(self, *args, **kwargs):
        if str(self) == config:
            raise PermissionError(13, "Permission denied", config)
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(pathlib.Path, "read_text", guarded_read)
    assert main(["evaluate", "--model", str(tiny_checkpoint), "--forget-classes", "Bag", "--out",
                 str(tmp_path / "eval")]) == 2
    line = _error_line(capsys)
    assert config in line and "Permission denied" in line
    assert not (tmp_path / "eval").exists()
