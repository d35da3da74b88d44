"""Our Fréchet distance (torchmetrics' FrechetInceptionDistance on our features) against an independent numpy/scipy computation (scipy.linalg.sqrtm), on
feature sets shaped like real evaluations, including singular covariances (fewer images than
feature dimensions). Prints both values, their relative difference and the time each took.

    python benchmarks/fid_agreement.py
"""

from __future__ import annotations

import time

import numpy as np
import scipy.linalg
import torch

from i2i_unlearn.metrics import frechet_distance


def scipy_fid(x: np.ndarray, y: np.ndarray) -> float:
    cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(cov_x @ cov_y).real
    return float(((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(cov_x + cov_y - 2 * root))


def main() -> None:
    generator = torch.Generator().manual_seed(0)
    for images, dims in [(2000, 64), (400, 1280), (100, 1280)]:
        mixing = torch.randn(dims, dims, generator=generator) / dims ** 0.5
        real = torch.relu(torch.randn(images, dims, generator=generator) @ mixing)
        fake = torch.relu(torch.randn(images, dims, generator=generator) @ mixing + 0.1)
        start = time.perf_counter()
        ours = frechet_distance(real, fake)
        ours_seconds = time.perf_counter() - start
        start = time.perf_counter()
        reference = scipy_fid(real.double().numpy(), fake.double().numpy())
        scipy_seconds = time.perf_counter() - start
        print(f"{images} images x {dims} dims: ours {ours:.6f}, scipy {reference:.6f}, relative difference "
              f"{abs(ours - reference) / abs(reference):.2e} ({ours_seconds:.2f} s vs {scipy_seconds:.2f} s)")


if __name__ == "__main__":
    main()
