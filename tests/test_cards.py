"""Model cards: every checkpoint train and unlearn write carries a Hugging Face README.md that says what it is."""

import json

from huggingface_hub import ModelCard

from i2i_unlearn.audit import add_metrics
from i2i_unlearn.cli import main


def test_a_trained_checkpoint_has_a_hub_model_card(tiny_checkpoint):
    card = ModelCard.load(tiny_checkpoint / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "image-to-image"
    assert "i2i-unlearn" in data["tags"] and data["datasets"] == ["zalando-datasets/fashion_mnist"]
    record = json.loads((tiny_checkpoint / "train_record.json").read_text())
    assert f"{record['parameters']['total']:,} parameters" in card.text and "30 steps" in card.text


def test_an_unlearned_checkpoint_card_names_what_it_forgot_and_the_certificate(tiny_checkpoint, tmp_path):
    out = tmp_path / "unlearned"
    assert main(["unlearn", "--model", str(tiny_checkpoint), "--out", str(out), "--forget-classes", "Trouser,Bag",
                 "--retain-limit", "32", "--steps", "2", "--batch-size", "4", "--fixed-alpha"]) == 0
    card = ModelCard.load(out / "README.md")
    certificate = json.loads((out / "certificate.json").read_text())
    assert "forgot the classes Trouser, Bag" in card.text and certificate["digest"] in card.text
    assert "machine-unlearning" in card.data.tags and "i2i" in card.data.tags
    assert card.data.base_model is None  # a local folder is no hub model
    assert main(["verify", str(out)]) == 0  # the card is beside the certificate, not part of what it seals
    metrics = {"before": {"retain": {"hole_mse": 0.0123, "fid": 4.5}}, "after": {"retain": {"hole_mse": 0.0125,
                                                                                           "fid": 4.75}}}
    add_metrics(out, metrics, {"task": "center"})
    card = ModelCard.load(out / "README.md")
    resealed = json.loads((out / "certificate.json").read_text())
    assert resealed["digest"] != certificate["digest"] and resealed["digest"] in card.text
    assert "| after | retain | 0.0125 | 4.75 |" in card.text


def test_every_bundled_model_ships_the_card_its_record_makes():
    from i2i_unlearn.cards import memorise_card, train_card
    from i2i_unlearn.models import ASSETS

    folders = [folder for folder in ASSETS.iterdir() if (folder / "config.json").is_file()
               and not folder.name.startswith("classifier")]
    assert len([f for f in folders if "-private" not in f.name]) == 11
    for folder in folders:
        if (folder / "memorise_record.json").is_file():
            record = json.loads((folder / "memorise_record.json").read_text())
            assert (folder / "README.md").read_text() == str(memorise_card(record)), folder.name
            continue
        record = json.loads((folder / "train_record.json").read_text())
        assert (folder / "README.md").read_text() == str(train_card(record)), folder.name  # remake: train_card(record).save(folder / "README.md")
