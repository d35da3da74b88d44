"""i2i-unlearn: make a trained image-to-image model forget data by fine-tuning its encoder.

Python API in short::

    from i2i_unlearn import load_model, load_dataset, make_splits, unlearn, evaluate
"""

__version__ = "0.1.0"

import sys
import types

# What the names below come from. They are imported on first use, so that a Ctrl-C while the
# command line starts is ours to handle (cli.main) rather than torch's import's (PEP 562).
_EXPORTS = {"UserError": "errors", "load_dataset": "data", "make_splits": "data", "Splits": "data",
            "load_model": "models", "create_model": "models", "bundled_model_path": "models",
            "unlearn": "unlearn", "UnlearnConfig": "unlearn", "train": "train", "TrainConfig": "train",
            "evaluate": "evaluate"}
__all__ = list(_EXPORTS)


class _Package(types.ModuleType):
    def __getattr__(self, name: str):
        if name not in _EXPORTS:
            raise AttributeError(f"module 'i2i_unlearn' has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        setattr(self, name, value)
        return value

    def __setattr__(self, name: str, value) -> None:
        # Importing the submodule `unlearn` (`train`, `evaluate`) binds it on the package; the
        # function of that name stays what `i2i_unlearn.unlearn` means, as it always has.
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
