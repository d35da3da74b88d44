"""Deletion certificates: written by every unlearning run, checked by `verify`, chained over
successive deletions; any changed file is named and `verify` exits non-zero."""

import json
import shutil

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
    assert certificate["parent_certificate"] is None
    assert certificate["method"] == "i2i_max_loss"  # a controlled run's default, named as what ran, not "auto"
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "u1")]) == 0
    assert "verified" in capsys.readouterr().out

    # a second deletion from the unlearned model chains to the first certificate
    assert _unlearn(tmp_path / "u1", tmp_path / "u2", data, "--forget-classes", "Pullover") == 0
    second = json.loads((tmp_path / "u2" / "certificate.json").read_text())
    assert second["parent_certificate"] == json.loads((tmp_path / "u1" / "certificate.json").read_text())["digest"]
    assert list(second["data"]["forget"]["classes"]) == ["Pullover"]
    assert second["data"]["request"]["retain_excludes"] == sorted(chosen)  # deleted before: never retained again
    assert second["data"]["retain"]["count"] == len(train) - 2 - sum(i.startswith("Pullover/") for i in train.ids)
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


def _edit(path, change):
    certificate = json.loads(path.read_text())
    change(certificate)
    path.write_text(json.dumps(certificate, indent=2))


def _key(tmp_path, name):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    key = Ed25519PrivateKey.generate()
    (tmp_path / f"{name}.pem").write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    (tmp_path / f"{name}.pub").write_bytes(key.public_key().public_bytes(Encoding.PEM,
                                                                         PublicFormat.SubjectPublicKeyInfo))
    return tmp_path / f"{name}.pem", tmp_path / f"{name}.pub"


def test_an_edited_certificate_field_is_named_and_the_digest_is_plain_sha256(tiny_checkpoint, image_folder,
                                                                            tmp_path, capsys):
    import hashlib

    assert _unlearn(tiny_checkpoint, tmp_path / "u", image_folder, "--forget-classes", "Trouser") == 0
    path = tmp_path / "u" / "certificate.json"
    certificate = json.loads(path.read_text())
    # what docs/certificates.md tells a reader without the toolkit to compute
    body = {k: v for k, v in certificate.items() if k not in ("digest", "signature")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert certificate["digest"] == hashlib.sha256(canonical).hexdigest() and certificate["format"] == 2
    pristine = path.read_text()
    for change, field in ((lambda c: c.update(method="retrain"), "field method"),
                          (lambda c: c["data"]["forget"]["classes"].update(Trouser=1), "field data.forget"),
                          (lambda c: c["config"].update(seed=7), "field config.seed"),
                          (lambda c: c.update(digest="0" * 64), "its digest does not match")):
        path.write_text(pristine)
        _edit(path, change)
        capsys.readouterr()
        assert main(["verify", str(tmp_path / "u"), "--no-data"]) == 1
        out = capsys.readouterr().out
        assert field in out and "MISMATCH" in out, (field, out)
    path.write_text(pristine)
    assert main(["verify", str(tmp_path / "u"), "--no-data"]) == 0


def test_a_resealed_parent_certificate_breaks_the_chain(tiny_checkpoint, image_folder, tmp_path, capsys):
    from i2i_unlearn.audit import seal

    assert _unlearn(tiny_checkpoint, tmp_path / "u1", image_folder, "--forget-classes", "Trouser") == 0
    assert _unlearn(tmp_path / "u1", tmp_path / "u2", image_folder, "--forget-classes", "Pullover") == 0
    parent = tmp_path / "u1" / "certificate.json"
    certificate = json.loads(parent.read_text())
    certificate["method"] = "retrain"
    parent.write_text(json.dumps(seal(certificate)))  # a consistent digest of the edited content
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "u1"), "--no-data"]) == 0  # on its own it holds together
    assert main(["verify", str(tmp_path / "u2"), "--no-data"]) == 1  # the link from the next deletion does not
    assert "does not match the one this deletion recorded" in capsys.readouterr().out


def test_a_signed_certificate_holds_for_its_key_only(tiny_checkpoint, image_folder, tmp_path, capsys):
    import base64

    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    from i2i_unlearn.audit import load_signing_key, seal

    private, public = _key(tmp_path, "org")
    other_private, other_public = _key(tmp_path, "other")
    out = tmp_path / "u"
    assert _unlearn(tiny_checkpoint, out, image_folder, "--forget-classes", "Trouser", "--sign-key", str(private)) == 0
    assert (out / "certificate.pub").read_bytes() == public.read_bytes()
    certificate = json.loads((out / "certificate.json").read_text())
    body = {k: v for k, v in certificate.items() if k not in ("digest", "signature")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    load_pem_public_key(public.read_bytes()).verify(base64.b64decode(certificate["signature"]["value"]), canonical)
    capsys.readouterr()
    assert main(["verify", str(out), "--no-data", "--public-key", str(public)]) == 0
    assert "signature" in capsys.readouterr().out
    assert main(["verify", str(out), "--no-data", "--public-key", str(other_public)]) == 1
    assert "signed by another key" in capsys.readouterr().out
    # an edit resealed with another key, its public key put beside it: only the organisation's key tells
    certificate["method"] = "retrain"
    (out / "certificate.json").write_text(json.dumps(seal(certificate, load_signing_key(other_private))))
    (out / "certificate.pub").write_bytes(other_public.read_bytes())
    assert main(["verify", str(out), "--no-data"]) == 0
    assert "pass --public-key" in capsys.readouterr().out
    assert main(["verify", str(out), "--no-data", "--public-key", str(public)]) == 1
    certificate.pop("signature")
    (out / "certificate.json").write_text(json.dumps(seal(certificate)))
    capsys.readouterr()
    assert main(["verify", str(out), "--no-data", "--public-key", str(public)]) == 1
    assert "is not signed" in capsys.readouterr().out


def test_a_bad_signing_key_is_refused_before_anything_is_written(tiny_checkpoint, image_folder, tmp_path, capsys):
    from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    (tmp_path / "garbage.pem").write_text("not a key\n")
    (tmp_path / "ec.pem").write_bytes(generate_private_key(SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    for key, message in (("garbage.pem", "not an unencrypted PEM private key"), ("ec.pem", "not an Ed25519 key"),
                         ("missing.pem", "cannot read the private key")):
        capsys.readouterr()
        assert _unlearn(tiny_checkpoint, tmp_path / "u", image_folder, "--forget-classes", "Trouser",
                        "--sign-key", str(tmp_path / key)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
        assert not (tmp_path / "u").exists() and not list(tmp_path.glob(".u*"))


def test_verify_evaluate_without_metrics_says_so(tiny_checkpoint, image_folder, tmp_path, capsys):
    assert _unlearn(tiny_checkpoint, tmp_path / "u", image_folder, "--forget-classes", "Trouser") == 0
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "u"), "--no-data", "--evaluate"]) == 0
    out = capsys.readouterr().out
    assert "records no metrics" in out and "MISMATCH" not in out and "metrics match" not in out


def test_a_certificate_stripped_of_its_seal_is_a_mismatch(tiny_checkpoint, image_folder, tmp_path, capsys):
    assert _unlearn(tiny_checkpoint, tmp_path / "u", image_folder, "--forget-classes", "Trouser") == 0
    path = tmp_path / "u" / "certificate.json"
    pristine = path.read_text()
    for strip, said in ((lambda c: c.update(method="retrain", format=1), "field method has changed"),
                        (lambda c: [c.pop(k) for k in ("digest", "field_digests")], "no digest of its own content")):
        path.write_text(pristine)
        _edit(path, strip)  # calling it format 1 does not switch the check off
        capsys.readouterr()
        assert main(["verify", str(tmp_path / "u"), "--no-data"]) == 1
        assert said in capsys.readouterr().out
    path.write_text(pristine)
    _edit(path, lambda c: c.update(format="2"))
    assert main(["verify", str(tmp_path / "u"), "--no-data"]) == 2
    assert "no valid field format" in capsys.readouterr().err


def test_metrics_are_never_added_to_an_edited_certificate(tiny_checkpoint, image_folder, tmp_path):
    from i2i_unlearn import UserError
    from i2i_unlearn.audit import add_metrics

    assert _unlearn(tiny_checkpoint, tmp_path / "u", image_folder, "--forget-classes", "Trouser") == 0
    _edit(tmp_path / "u" / "certificate.json", lambda c: c.update(method="retrain"))
    edited = (tmp_path / "u" / "certificate.json").read_text()
    try:
        add_metrics(tmp_path / "u", {"after": {}}, {})
    except UserError as exc:
        assert "field method" in str(exc)
    else:
        raise AssertionError("an edited certificate was sealed again")
    assert (tmp_path / "u" / "certificate.json").read_text() == edited


def test_a_garbled_public_key_beside_a_signed_certificate_is_a_mismatch(tiny_checkpoint, image_folder, tmp_path,
                                                                        capsys):
    private, _ = _key(tmp_path, "org")
    out = tmp_path / "u"
    assert _unlearn(tiny_checkpoint, out, image_folder, "--forget-classes", "Trouser", "--sign-key", str(private)) == 0
    (out / "certificate.pub").write_text("garbage\n")
    capsys.readouterr()
    assert main(["verify", str(out), "--no-data"]) == 1
    assert "cannot be used" in capsys.readouterr().out
