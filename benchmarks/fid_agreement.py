"""Our Fréchet distance against an independent numpy/scipy computation (scipy.linalg.sqrtm), on
feature sets shaped like real evaluations, including singular covariances (fewer images than
feature dimensions). Prints both values, their relative difference and the time each took.

    python benchmarks/fid_agreement.py
"""
import numpy as np, scipy.linalg, torch, time
from i2i_unlearn.metrics import FeatureStats, frechet_distance
g = torch.Generator().manual_seed(0)
for n, d in [(2000, 64), (400, 1280), (100, 1280)]:
    mix = torch.randn(d, d, generator=g) / d ** 0.5
    real = torch.relu(torch.randn(n, d, generator=g) @ mix)
    fake = torch.relu(torch.randn(n, d, generator=g) @ mix + 0.1)
    a, b = FeatureStats(d), FeatureStats(d); a.update(real); b.update(fake)
    t = time.time(); ours = frechet_distance(a, b); t1 = time.time() - t
    x, y = real.double().numpy(), fake.double().numpy()
    ca, cb = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    t = time.time(); root = scipy.linalg.sqrtm(ca @ cb).real; t2 = time.time() - t
    ref = ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * root)
    print(f"n={n} d={d}: ours {ours:.6f} scipy {ref:.6f} rel diff {abs(ours-ref)/abs(ref):.2e} ({t1:.2f}s vs {t2:.2f}s)")
