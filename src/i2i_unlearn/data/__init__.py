"""Datasets, forget/retain/test splits and masks."""

from .datasets import ImageDataset, load_dataset, fit_image, FASHION_MNIST_CLASSES
from .splits import (Splits, check_disjoint, emphasise_in_retain, exclude_from_retain, hold_out_validation, make_splits, membership_sets, read_forget_list,
                     read_membership_lists, stack_images, subset_per_class)
from .masks import make_mask, apply_mask, parse_task
from .degradations import degrade, is_degradation

__all__ = ["ImageDataset", "load_dataset", "fit_image", "FASHION_MNIST_CLASSES", "Splits", "hold_out_validation",
           "make_splits", "stack_images", "subset_per_class", "read_forget_list", "membership_sets",
           "read_membership_lists", "check_disjoint", "exclude_from_retain",
           "emphasise_in_retain", "make_mask", "apply_mask",
           "parse_task", "degrade", "is_degradation"]
