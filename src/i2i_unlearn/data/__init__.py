"""Datasets, forget/retain/test splits and masks."""

from .datasets import ImageDataset, load_dataset, fit_image, FASHION_MNIST_CLASSES
from .splits import Splits, hold_out_validation, make_splits, stack_images, subset_per_class, read_forget_list
from .masks import make_mask, apply_mask, parse_task

__all__ = ["ImageDataset", "load_dataset", "fit_image", "FASHION_MNIST_CLASSES", "Splits", "hold_out_validation",
           "make_splits", "stack_images", "subset_per_class", "read_forget_list", "make_mask", "apply_mask",
           "parse_task"]
