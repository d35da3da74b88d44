"""Deletion certificates: written by every unlearning run, checked by `verify`, chained over
successive deletions; any changed file is named and `verify` exits non-zero."""

import json
import shutil

from i2i_unlearn.audit import sha256_file
from i2i_unlearn.cli import main
from i2i_unlearn.data import load_dataset


def _unlearn(model, out, data, *extra):
    return main(["unlearn", "--model", str(model), "--out", str(out), "--dataset", f"imagefolder:{data}",
                 "--steps", "2", "--batch-size", "4", *extra])


def _copy(folder, tmp_path, name):
    target = tmp_path / name
    shutil.copytree(folder, target)
    return target


def test_certificate_names_the_forget_files_and_both_checkpoints(tiny_checkpoint, image_folder, tmp_path, capsys):
    data = _copy(image_folder, tmp_path, "data")
    listing = tmp_path / "forget.txt"
    train = load_dataset(f"imagefolder:{data}", "train", 16, 1)
    chosen = [image_id for image_id in train.ids if image_id.startswith("Trouser/")][:2]
    listing.write_text("\n".join(chosen) + "\n")
    original = _copy(tiny_checkpoint, tmp_path, "original")
    assert _unlearn(original, tmp_path / "u1", data, "--forget-list", str(listing)) == 0
    certificate = json.loads((tmp_path / "u1" / "certificate.json").read_text())
    forget = certificate["data"]["forget"]
    assert [image["id"] for image in forget["images"]] == chosen
    assert forget["count"] == 2 and forget["classes"] == {"Trouser": 2}
    assert certificate["original_checkpoint"]["sha256"] and certificate["unlearned_checkpoint"]["sha256"]
    assert certificate["parent_certificate"] is None and certificate["method"] == "i2i"
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "u1")]) == 0
    assert "verified" in capsys.readouterr().out

    # a second deletion from the unlearned model chains to the first certificate
    assert _unlearn(tmp_path / "u1", tmp_path / "u2", data, "--forget-classes", "Pullover") == 0
    second = json.loads((tmp_path / "u2" / "certificate.json").read_text())
    assert second["parent_certificate"] == sha256_file(tmp_path / "u1" / "certificate.json")
    assert list(second["data"]["forget"]["classes"]) == ["Pullover"]
    assert second["original_checkpoint"]["sha256"] == certificate["unlearned_checkpoint"]["sha256"]
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "u2" / "certificate.json")]) == 0

    # tampering anywhere in the chain is found and named
    (data / chosen[0]).write_bytes((data / chosen[1]).read_bytes())
    assert main(["verify", str(tmp_path / "u1")]) == 1
    out = capsys.readouterr()
    assert "forget data differs" in out.out and chosen[0] in out.out
    assert "verification failed" in out.err
    weights = next((original).glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    assert main(["verify", str(tmp_path / "u2"), "--no-data"]) == 1
    assert "earlier deletion: original checkpoint" in capsys.readouterr().out


def test_forget_images_deleted_after_the_deletion_are_a_note_not_a_mismatch(tiny_checkpoint, image_folder, tmp_path,
                                                                           capsys):
    data = _copy(image_folder, tmp_path, "data")
    assert _unlearn(tiny_checkpoint, tmp_path / "u", data, "--forget-classes", "Trouser") == 0
    first = json.loads((tmp_path / "u" / "certificate.json").read_text())["data"]["forget"]["images"][0]["id"]
    (data / first).unlink()  # the user deletes the photo they asked the model to forget
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "u")]) == 0
    assert "NOTE 1 of" in capsys.readouterr().out


def test_a_changed_unlearned_checkpoint_is_named(tiny_checkpoint, image_folder, tmp_path, capsys):
    assert _unlearn(tiny_checkpoint, tmp_path / "u", image_folder, "--forget-classes", "Trouser") == 0
    config = tmp_path / "u" / "config.json"
    config.write_text(config.read_text() + " ")
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "u"), "--no-data"]) == 1
    assert "config.json has changed" in capsys.readouterr().out


def test_verify_refuses_what_is_not_a_certificate(tmp_path, capsys):
    (tmp_path / "c.json").write_text("{not json")
    assert main(["verify", str(tmp_path / "c.json")]) == 2
    assert main(["verify", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "not valid JSON" in err[0] and "no certificate" in err[1]
