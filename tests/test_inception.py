"""The FID Inception-v3 extractor: loads a local weights file, gives (N, 2048) features, clear errors."""

from __future__ import annotations

import pytest
import torch

from i2i_unlearn.errors import UserError
from i2i_unlearn.metrics.inception import WEIGHTS_ENV, WEIGHTS_FILE, FIDInceptionNetwork, InceptionV3FID


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A random-weights file with the FID Inception layout."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("inception") / "random.pth"
    torch.save(FIDInceptionNetwork().state_dict(), path)
    return path


def _one_line_error(**kwargs) -> str:
    with pytest.raises(UserError) as caught:
        InceptionV3FID(**kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_features_and_logits(weights):
    extractor = InceptionV3FID(str(weights))
    assert not any(p.requires_grad for p in extractor.parameters())
    assert not extractor.train().network.training
    torch.manual_seed(1)
    with torch.no_grad():
        for count, channels in ((1, 1), (2, 3)):
            features = extractor(torch.rand(count, channels, 32, 32))
            assert features.shape == (count, extractor.dim) == (count, 2048)
            assert torch.isfinite(features).all()
        logits = extractor.class_logits(features)
    assert logits.shape == (2, 1008) and torch.isfinite(logits).all()


def test_weights_from_environment(weights, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(weights))
    assert InceptionV3FID().name == "inception-v3"


def test_missing_weights(tmp_path, monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    message = _one_line_error()
    assert WEIGHTS_FILE in message and "https://" in message and "inception-v3:" in message and WEIGHTS_ENV in message
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "nowhere.pth"))
    assert "nowhere.pth" in _one_line_error() and WEIGHTS_FILE in _one_line_error()


def test_corrupt_file(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"\x00\x01 not a torch file \xff" * 10)
    assert "not the FID Inception weights" in _one_line_error(weights_path=str(path))


def test_wrong_keys(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    message = _one_line_error(weights_path=str(path))
    assert "not the FID Inception weights" in message and "missing" in message and "unexpected" in message


def test_resize_follows_tensorflow1():
    from i2i_unlearn.metrics.inception import resize_like_tensorflow1

    row = torch.tensor([0.0, 10.0]).view(1, 1, 1, 2).expand(1, 1, 2, 2)
    # TF1 samples input position i * 2 / 4 and clamps at the edge: 0, 5, 10, 10 (not half-pixel centred).
    assert resize_like_tensorflow1(row, 4)[0, 0, 0].tolist() == [0.0, 5.0, 10.0, 10.0]
