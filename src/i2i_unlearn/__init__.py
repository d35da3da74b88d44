"""i2i-unlearn: make a trained image-to-image model forget data by fine-tuning its encoder.

Python API in short::

    from i2i_unlearn import load_model, load_dataset, make_splits, unlearn, evaluate
"""

__version__ = "0.1.0"

from .errors import UserError  # noqa: E402
from .data import load_dataset, make_splits, Splits  # noqa: E402
from .models import load_model, create_model, bundled_model_path  # noqa: E402
from .unlearn import unlearn, UnlearnConfig  # noqa: E402
from .train import train, TrainConfig  # noqa: E402
from .evaluate import evaluate  # noqa: E402

__all__ = [
    "UserError", "load_dataset", "make_splits", "Splits", "load_model", "create_model",
    "bundled_model_path", "unlearn", "UnlearnConfig", "train", "TrainConfig", "evaluate",
]
