"""Peak memory and step time of an unlearning run, against the sum of what it must hold.

    python benchmarks/memory.py                       # the three bundled models, 64 + 64 images
    python benchmarks/memory.py --full-size           # ViT-MAE-Base 224 px and a Palette-size UNet 256 px
    python benchmarks/memory.py --full-size --precision bf16   # the step under bf16 autocast

Each configuration runs in a fresh process (so its peak is its own): `engine.run` with the
paper's method (encoder-only, fixed forget_alpha) for `--steps` steps on random images of the
model's size. Printed per configuration:

- parts: the model (student), the teacher (a copy of the encoder), AdamW's two moments and the
  gradients of what trains, and one step's activations: every tensor autograd saves for the
  backward pass, measured with `torch.autograd.graph.saved_tensors_hooks` (parameters excluded,
  each storage counted once), at the batch and at half of it, which gives the cost per image;
- and the teacher's embeddings that the loss compares against (held, without a graph, until
  the backward pass);
- peak: the process's resident high-water mark (VmHWM) minus its resident size just before the
  model was built (the Python, torch and library code that any run carries);
- peak ÷ parts, and seconds per step (the median of the steps after the first).

Random weights: memory and time depend on shapes, not on what the weights are.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

CONFIGS = {
    # What any run holds beyond its parts: the kernels, thread pools and allocator caches that a
    # first forward and backward pass set up, seen with a model and batch too small to count.
    "floor (tiny MAE, 16 px)": {"family": "mae", "batch": 2, "settings": {
        "image_size": 16, "channels": 1, "patch_size": 4, "hidden_size": 32, "depth": 2, "heads": 2,
        "decoder_hidden_size": 32, "decoder_depth": 1, "decoder_heads": 2}},
    "mae (bundled)": {"bundled": "mae", "batch": 64},
    "diffusion (bundled)": {"bundled": "diffusion", "batch": 64},
    "vqgan (bundled)": {"bundled": "vqgan", "batch": 64},
    # ViT-MAE-Base: the shapes of facebook/vit-mae-base (112 M parameters).
    "ViT-MAE-Base 224 px": {"family": "mae", "batch": 8, "settings": {
        "image_size": 224, "channels": 3, "patch_size": 16, "hidden_size": 768, "depth": 12, "heads": 12,
        "decoder_hidden_size": 512, "decoder_depth": 8, "decoder_heads": 16}},
    # Palette's inpainting UNet (the paper's diffusion code): 64 base channels x (1, 2, 4, 8), two
    # residual blocks a level, 32-channel attention heads, attention in the middle block.
    "Palette-size UNet 256 px": {"family": "diffusion", "batch": 4, "settings": {
        "image_size": 256, "channels": 3, "block_out_channels": [64, 128, 256, 512], "layers_per_block": 2,
        "attention_levels": [False, False, False, False], "attention_head_dim": 32, "norm_num_groups": 32}},
}


def resident(field: str) -> int:
    """A field of /proc/self/status (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def step_seconds(method, trainable, batch: int, steps: int, description: str = "step", **settings) -> list[float]:
    """The seconds each of `steps` steps of `method` takes through `engine.run` (`settings`: its
    precision, compile), on random images of the model's size, `batch` forget + `batch` retain."""
    import torch

    from i2i_unlearn import engine

    model = method.model
    images = torch.utils.data.TensorDataset(torch.rand(4 * batch, model.channels, model.image_size, model.image_size))
    loaders = {"forget": engine.loader(images, batch, 0), "retain": engine.loader(images, batch, 1)}
    times, clock = [], [time.perf_counter()]

    def tick(step, optimizer):
        now = time.perf_counter()
        times.append(now - clock[0])
        clock[0] = now

    engine.run(method, trainable, loaders, engine.OptimConfig(steps=steps, lr=3e-4), seed=0,
               accelerator=engine.make_accelerator(cpu=True), description=description, after_step=tick, **settings)
    return times


def measure(name: str, steps: int, precision: str) -> dict:
    """One configuration, in this process."""
    import torch

    from i2i_unlearn.methods import create_method
    from i2i_unlearn.models import DEFAULT_BUNDLED, create_model, load_model

    spec = CONFIGS[name]
    torch.manual_seed(0)
    before = resident("VmRSS")
    if "bundled" in spec:
        model = load_model(f"bundled:{DEFAULT_BUNDLED[spec['bundled']]}")
    else:
        model = create_model(spec["family"], **spec["settings"])
    method = create_method("i2i", model)
    trainable = method.trainable_parameters()
    size = lambda tensors: sum(t.numel() * t.element_size() for t in tensors)  # noqa: E731
    batch = spec["batch"]
    shape = (model.channels, model.image_size, model.image_size)

    def activations(images: int) -> int:
        """Bytes autograd saves for backward in one step of `images` forget + `images` retain images."""
        own = {p.untyped_storage().data_ptr() for p in method.parameters()}
        seen: dict[int, int] = {}
        embed = model.embed

        def counted(*args, **kwargs):  # the teacher's embeddings (no graph) are held as targets
            out = embed(*args, **kwargs)
            if not torch.is_grad_enabled():
                targets.append(size(out))
            return out

        def pack(tensor):
            storage = tensor.untyped_storage()
            if storage.data_ptr() not in own:
                seen[storage.data_ptr()] = storage.nbytes()
            return tensor

        targets.clear()
        model.embed = counted
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor), \
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss, _ = method({"forget": torch.rand(images, *shape), "retain": torch.rand(images, *shape)})
        del model.embed, loss
        return sum(seen.values())

    targets: list[int] = []
    half = activations(batch // 2)
    per_batch = activations(batch)
    parts = {"teacher targets": sum(targets), "model": size(model.parameters()), "teacher": size(method.teacher.parameters()),
             "optimizer": 2 * size(trainable), "gradients": size(trainable), "activations": per_batch}
    times = step_seconds(method, trainable, batch, steps, description=name, precision=precision)
    return {"name": name, "batch": batch, "parameters": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in trainable), "parts": parts,
            "per_image": (per_batch - half) / batch, "peak": resident("VmHWM") - before,
            "seconds_per_step": statistics.median(times[1:]) if len(times) > 1 else times[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-size", action="store_true", help="the full-size configurations")
    parser.add_argument("--steps", type=int, default=None, help="steps per configuration (default 10, full size 3)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one configuration, print JSON
    args = parser.parse_args()
    steps = args.steps or (3 if args.full_size else 10)
    if args.one:
        print(json.dumps(measure(args.one, steps, args.precision)))
        return
    names = [n for n in CONFIGS if n.startswith("floor") or ("bundled" in CONFIGS[n]) != args.full_size]
    gb = 1024 ** 3
    print(f"{steps} steps each, encoder-only (the paper's method), {args.precision}, CPU; GiB = 2^30 bytes")
    print("| configuration | parameters | images / step | model + teacher | optimiser + gradients | activations "
          "| teacher targets | sum of parts | peak | peak ÷ parts | activations per image | s / step |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        result = subprocess.run([sys.executable, __file__, "--one", name, "--steps", str(steps), "--precision",
                                 args.precision],
                                capture_output=True, text=True)
        if result.returncode != 0:
            print(f"| {name} | failed: {result.stderr.strip().splitlines()[-1]} |")
            continue
        r = json.loads(result.stdout.strip().splitlines()[-1])
        p = r["parts"]
        total = sum(p.values())
        print(f"| {name} | {r['parameters'] / 1e6:.1f} M ({r['trainable'] / 1e6:.1f} M train) | "
              f"{r['batch']} + {r['batch']} | {(p['model'] + p['teacher']) / gb:.2f} | "
              f"{(p['optimizer'] + p['gradients']) / gb:.2f} | {p['activations'] / gb:.2f} | {p['teacher targets'] / gb:.2f} | {total / gb:.2f} | "
              f"{r['peak'] / gb:.2f} | {r['peak'] / total:.2f}x | {r['per_image'] / 2 ** 20:.1f} MiB | "
              f"{r['seconds_per_step']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
