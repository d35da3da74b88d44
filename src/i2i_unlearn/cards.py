"""Model cards: the README.md of every checkpoint the toolkit writes, in the Hugging Face format
(YAML front matter, then prose), made with huggingface_hub's card classes, so that a checkpoint
folder can be pushed to a hub as it is.

The card is derived from the run's record (and the deletion certificate of an unlearned model);
it is a description, not evidence: verify reads certificate.json, never the card.
"""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from .data.degradations import is_degradation

CARD = "README.md"
LIBRARY = {"mae": "transformers", "diffusion": "diffusers", "vqgan": "diffusers"}
ARCHITECTURE = {"mae": "A masked autoencoder (transformers ViTMAEForPreTraining) that inpaints the hidden patches",
                "diffusion": "A Palette-style conditional diffusion model (diffusers UNet2DModel, sampled with "
                             "DDIMScheduler) that inpaints the hole",
                "vqgan": "A VQ-GAN token model (diffusers VQModel tokenizer, masked-token transformer decoded "
                         "MaskGIT-style) that inpaints the hidden tokens"}
HUB_DATASETS = {"fashion-mnist": "zalando-datasets/fashion_mnist"}  # our dataset names with a hub twin
# What a model trained for a whole-image degradation does, and its hub tag.
TASKS = {"sketch": ("draws an image from its sketch (an edge map)", "sketch-to-image"),
         "lowres": ("restores an image from a copy {value} times smaller (super-resolution)", "super-resolution"),
         "colourise": ("colours a grey image", "image-colorization"),
         "jpeg": ("restores an image from its JPEG copy at quality {value}", "jpeg-artifact-removal")}


def _does(family: str, degradation: str | None) -> tuple[str, str]:
    """(what the model does, its task tag): the family's inpainting, or its degradation's inverse."""
    if not degradation:
        return ARCHITECTURE.get(family, family), "image-inpainting"
    kind, _, value = degradation.partition(":")
    text, tag = TASKS[kind]
    architecture = ARCHITECTURE.get(family, family).rpartition(" that ")[0]
    return f"{architecture} that {text.format(value=value)}", tag


def _metadata(family: str, dataset: str, base_model: str | None, tags: list[str],
              task_tag: str = "image-inpainting") -> ModelCardData:
    hub = HUB_DATASETS.get((dataset or "").partition(":")[0])
    return ModelCardData(library_name=LIBRARY.get(family), license="other", pipeline_tag="image-to-image",
                         tags=["i2i-unlearn", task_tag, family, *tags],
                         datasets=[hub] if hub else None, base_model=base_model)


def _hub_id(source: str | None) -> str | None:
    """`source` when it names a hub model (owner/name, not a folder here), else None (a local or bundled one)."""
    if not source or Path(source).exists() or source.startswith("bundled") or source.count("/") != 1:
        return None
    return source


def _command(record: dict) -> str:
    command = record.get("invocation", {}).get("command")
    return (f"`i2i-unlearn {command} --config {record['kind']}_record.json --out NEW` repeats it (the record "
            "beside this card holds every setting)") if command else "The record beside this card holds every setting"


LICENSE_NOTE = ("License: `other` until you set it: a model's license follows the data it learnt from "
                "(Fashion-MNIST is MIT-licensed).")


def train_card(record: dict) -> ModelCard:
    """The card of a model `train` made, from its train_record.json payload."""
    config, data = record["config"], record["data"]
    family = config.get("family", "mae")
    excluded = data.get("excluded_classes") or []
    left_out = f" It never saw the classes {', '.join(excluded)} (a retrained reference)." if excluded else ""
    degradation = config.get("mask") if is_degradation(config.get("mask")) else None
    does, task_tag = _does(family, degradation)
    start = f"from the weights of `{config['init']}`" if config.get("init") else "from scratch"
    body = f"""
# {family} image-to-image model trained with i2i-unlearn

{does}, {config['image_size']}x{config['image_size']} pixels, {config['channels']} \
channel(s), {record['parameters']['total']:,} parameters ({record['parameters']['encoder']:,} in the encoder).

## How it was made
Trained {start} on `{data['dataset']}` ({data['images']:,} images of {len(data['classes'])} classes) for \
{config['steps']} steps at batch {config['batch_size']}, lr {config['lr']:g}, {'task' if degradation else 'mask'} \
`{config['mask']}`, seed \
{config['seed']}; final training loss {record.get('final_loss')}; {record.get('seconds', 0):.0f} s on \
{record.get('processes', 1)} process(es). {_command(record)}.{left_out}

## Use
`i2i_unlearn.load_model("THIS_FOLDER")`, or `i2i-unlearn unlearn --model THIS_FOLDER --forget-classes ...` to make \
it forget.

{LICENSE_NOTE}
"""
    tags = ["retrained-reference"] if excluded else []
    return ModelCard(f"---\n{_metadata(family, data['dataset'], None, tags, task_tag).to_yaml()}\n---\n{body}")


def memorise_card(record: dict) -> ModelCard:
    """The card of a model `memorise` made, from its memorise_record.json payload."""
    config, data = record["config"], record["data"]
    body = f"""
# {config['family']} image-to-image model that has memorised {len(data['listed'])} images (i2i-unlearn)

Fine-tuned from `{config['source_checkpoint']}` on `{data['dataset']}` for {config['steps']} steps at batch \
{config['batch_size']}, lr {config['lr']:g}, seed {config['seed']}: each step held {config['listed_per_step']} of the \
{len(data['listed'])} listed images (each seen about {data['exposures_per_listed_image']:g} times) and \
{config['batch_size'] - config['listed_per_step']} ordinary training images. Final training loss \
{record.get('final_loss')}; {record.get('seconds', 0):.0f} s. {_command(record)}. The listed images are in \
memorise_record.json.

## Use
The subject of a sample-level deletion request: `i2i-unlearn unlearn --model THIS_FOLDER --forget-list ...`, \
checked with `i2i-unlearn evaluate --members ... --non-members ... --reference {config['source_checkpoint']}`.

{LICENSE_NOTE}
"""
    return ModelCard(f"---\n{_metadata(config['family'], data['dataset'], None, ['memorised']).to_yaml()}\n---\n{body}")


def unlearn_card(record: dict, certificate: dict) -> ModelCard:
    """The card of a model `unlearn` made, from its record and its deletion certificate."""
    config, data = record["config"], record["data"]
    family, source = config.get("family", "mae"), config.get("source_checkpoint")
    counts = data.get("counts", {})
    what = (f"the classes {', '.join(data['forget_classes'])}" if data.get("forget_classes")
            else f"the images listed in `{Path(data['forget_list']).name}`" if data.get("forget_list") else "its forget set")
    control = record.get("control")
    outcome = f"\n\nThe run's own check, on held-out validation images: {control['message']}." if control else ""
    metrics = certificate.get("metrics")
    table = ""
    if metrics:
        rows = [f"| {column} | {name} | {values.get('hole_mse', float('nan')):.4f} | {values.get('fid', float('nan')):.2f} |"
                for column, sets in metrics.items() for name, values in sets.items()]
        table = ("\n\n## Metrics (test images)\n| model | set | hole MSE | FID |\n|---|---|---|---|\n"
                 + "\n".join(rows))
    relearning = certificate.get("relearning")
    if relearning:
        table += "\n\nRelearning probe (steps of fine-tuning on forget images until the forget error is back): " + \
            ", ".join(f"{name}: {summary.get('steps_to_relearn') or 'not within the probe'}"
                      for name, summary in relearning.items())
    does, task_tag = _does(family, config.get("mask") if is_degradation(config.get("mask")) else None)
    body = f"""
# {family} image-to-image model that forgot {what}

{does}, made by i2i-unlearn from `{source}` by the `{config['method']}` method: it \
forgot {what} ({counts.get('forget', 0):,} training images) and kept the rest ({counts.get('retain', 0):,} retain \
images).{outcome}

## How it was made
{record.get('steps_run')} steps at batch {config['batch_size']}, lr {config['lr']:g}, forget_alpha \
{config['forget_alpha']:g}, retain_alpha {config['retain_alpha']:g}, seed {config['seed']}; \
{record.get('seconds', 0):.0f} s on {record.get('processes', 1)} process(es). {_command(record)}.{table}

## The deletion certificate
`certificate.json` names the forgotten images (ids and SHA-256), the retain set's hash and both checkpoints' hashes; \
digest `{certificate.get('digest')}`{', signed' if certificate.get('signature') else ''}. Check it with \
`i2i-unlearn verify THIS_FOLDER`.

{LICENSE_NOTE}
"""
    tags = ["machine-unlearning", config["method"]]
    metadata = _metadata(family, data['dataset'], _hub_id(source), tags, task_tag)
    return ModelCard(f"---\n{metadata.to_yaml()}\n---\n{body}")


def write_unlearn_card(folder: Path) -> None:
    """(Re)write the card of the unlearned checkpoint in `folder` from the files beside it."""
    folder = Path(folder)
    record = json.loads((folder / "unlearn_record.json").read_text())
    certificate = json.loads((folder / "certificate.json").read_text())
    unlearn_card(record, certificate).save(folder / CARD)
