"""Metrics, each usable alone: feature extractors, Fréchet distance, embedding cosine, hole MSE/PSNR."""

from .features import FeatureExtractor, EXTRACTORS, get_extractor
from .fid import frechet_distance
from .cosine import embedding_cosine
from .pixels import hole_mse, psnr
from .inception_score import inception_score

__all__ = ["FeatureExtractor", "EXTRACTORS", "get_extractor", "frechet_distance",
           "embedding_cosine", "hole_mse", "psnr", "inception_score"]
