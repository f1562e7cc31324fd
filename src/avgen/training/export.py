"""Turn a trained component of a run into shippable weights: half precision safetensors + config + model card,
and exported components into a loadable pipeline (`assemble`).

For autoencoders the export also sets `scaling_factor` (diffusers' convention: latents * scaling_factor
have unit standard deviation before the transformer), measured on world clips that no training step saw.

    avgen export runs/vae vae weights/tiny/vae        (avgen/commands/export.py)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from safetensors.torch import load_model
from transformers import AutoTokenizer

from avgen.models.autoencoder_audio import AudioAutoencoder
from avgen.models.text_encoder import load_encoder_tokenizer
from avgen.pipelines import AVGenPipeline, TextToVideoPipeline, VideoEditPipeline
from avgen.training.checkpoint import latest_checkpoint
from avgen.training.tasks import EVAL_SEED, is_edit_transformer
from avgen.training.weights import component_class
from avgen.world import render_clip
from avgen.world.spec import sample_spec

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def load_trained(run_dir: str | Path, name: str):
    """Component `name` of a run: final/<name> when the run finished, else its latest checkpoint."""
    run_dir = Path(run_dir)
    if (run_dir / "final" / name).is_dir():
        return component_class(run_dir / "final" / name).from_pretrained(run_dir / "final" / name, use_safetensors=True)
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise FileNotFoundError(f"{run_dir} has neither final/{name} nor a checkpoint")
    folder = checkpoint / name
    if not (folder / "config.json").is_file():  # checkpoints of older runs hold weights only: the preset's shape
        folder = Path(json.loads((run_dir / "config.json").read_text())["preset"]) / name
    cls = component_class(folder)
    if hasattr(cls, "from_config"):
        module = cls.from_config(cls.load_config(folder))
    else:
        module = cls(cls.config_class.from_pretrained(folder))
    load_model(module, str(checkpoint / f"{name}.safetensors"))
    return module


@torch.no_grad()
def latent_std(module, num_clips: int = 32) -> float:
    """Standard deviation of the posterior means of `num_clips` held-aside world clips (both formats)."""
    rng = np.random.default_rng(EVAL_SEED + 1)
    values = []
    for i in range(num_clips):
        duration, fps = ((10.0, 24), (16.0, 16))[i % 2]
        clip = render_clip(sample_spec(rng, fps=fps, duration=duration))
        if isinstance(module, AudioAutoencoder):
            x = torch.from_numpy(np.asarray(clip.audio, dtype=np.float32)).reshape(1, 1, -1)
        else:
            x = torch.from_numpy(clip.frames).permute(3, 0, 1, 2)[None].float() / 127.5 - 1  # (1, 3, F, H, W)
        values.append(module.encode(x).latent_dist.mode().flatten())
    return torch.cat(values).std().item()


def training_summary(run_dir: str | Path) -> dict:
    """What a run's own files say about it: its TrainConfig, the last step logged, the seconds it took
    (summed over logged steps, so the pauses between resumed pieces are not counted), the last
    evaluation's metrics and the machine of each piece (machines.jsonl, one line per start or resume)."""
    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    step, seconds, evaluation = 0, 0.0, {}
    log = run_dir / "log.jsonl"
    for line in log.read_text().splitlines() if log.is_file() else []:
        record = json.loads(line)
        if "eval" in record:
            evaluation = {"step": record["step"], **record["eval"]}
        elif "sec_per_step" in record:  # the mean over the steps since the previous record
            seconds += record["sec_per_step"] * max(0, record["step"] - step)
            step = record["step"]
    machines = run_dir / "machines.jsonl"
    pieces = [json.loads(line) for line in machines.read_text().splitlines()] if machines.is_file() else []
    return {"config": config, "steps": step, "train_seconds": round(seconds), "eval": evaluation, "machines": pieces}


def machine_lines(pieces: list[dict], steps: int) -> str:
    """The card's bullet for the machines a run trained on (machines.jsonl), each with the steps it took; consecutive
    pieces on the same machine, precision and process count are one. E.g. "- machine: Intel(R) Xeon(R) Processor,
    2 CPUs with bf16 units (amx_bf16, avx512_bf16), no GPU, precision bf16: steps 0-10038"; one sub-bullet a machine
    where there were several."""
    if not pieces:
        return "- machine: not recorded by the run"
    spans = []  # [words, first step, last step]
    for piece, following in zip(pieces, pieces[1:] + [None]):
        if following and following["step"] == piece["step"]:  # it kept no step (no checkpoint): the next one redid them
            continue
        units = piece["cpu_bf16_units"]
        words = (f"{piece['cpu']}, {piece['cpus']} CPUs " + (f"with bf16 units ({', '.join(units)})" if units else "without bf16 units")
                 + (f", {piece['gpus']} x {piece['gpu']}" if piece["gpu"] else ", no GPU") + f", precision {piece['precision']}"
                 + (f", {piece['processes']} processes" if piece["processes"] > 1 else ""))
        end = following["step"] if following else max(steps, piece["step"])
        if spans and spans[-1][0] == words:
            spans[-1][2] = end
        else:
            spans.append([words, piece["step"], end])
    lines = [f"{words}: steps {first}-{last}" for words, first, last in spans]
    return f"- machine: {lines[0]}" if len(lines) == 1 else "- machines:" + "".join(f"\n  - {line}" for line in lines)


def model_card(run_dir: str | Path, name: str, destination: str | Path, report: dict) -> str:
    """MODEL_CARD.md of an exported component, in the Hugging Face model card's sections: model details, training
    data, training procedure, the run's own evaluation, limitations, the commands that reproduce it. Judged figures
    (the world benchmark) are added under "### Metrics" by whoever measures them."""
    summary = training_summary(run_dir)
    config = summary["config"]
    options = " ".join(f"--option {k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in sorted(config["options"].items()))
    init = f" --init-from {config['init_from']}" if config.get("init_from") else ""
    init += f" --branch-from {config['branch_from']}" if config.get("branch_from") else ""
    data = "the procedural world's training stream (avgen.world.dataset; never the held-out pairs)" if config["data"] == "world" else config["data"]
    if config["task"] == "text-encoder":
        data = "world captions of the training phrasing (text only, never a held-out pair), with the attributes each one states"
    cache, vae = config["options"].get("latent_cache"), config["options"].get("vae", "VAE")
    command = ""
    if cache:  # t2v: world clips encoded once by the autoencoder
        shards = len(list(Path(cache).glob("shard-*.safetensors"))) or "N"
        data = f"world clips (both Movie Gen formats) encoded by the autoencoder into a latent cache of {shards} shards of 32 clips"
        command = f"avgen cache-latents {vae} {cache} --shards {shards}\n"
    edit_cache = config["options"].get("edit_cache")
    if edit_cache:  # edit: the world's training edit pairs (source and target) encoded the same way, t2v clips mixed in
        pairs = len(list(Path(edit_cache).glob("shard-*.safetensors"))) or "N"
        data = f"the world's training edit pairs ({pairs} shards of 32, both formats) with {data} mixed in"
        command += f"avgen cache-latents {vae} {edit_cache} --edits --shards {pairs}\n"
    # the edit task starts from a text-to-video model through its option init (input channels doubled), or goes on
    # training an edit model's
    initialised = config.get("init_from") or _edit_init(config["options"].get("init")) or "random (the preset config)"
    if config.get("branch_from"):  # a run that went on from another run's checkpoint under changed settings
        initialised = f"the checkpoint {config['branch_from']} (weights, optimizer and step)"
    weights_from = f"{initialised}/{name}"  # where a frozen component's weights came from
    if name == "text_encoder" and config["options"].get("text_encoder"):  # a pretrained encoder named by the run
        initialised = weights_from = f"the pretrained encoder {config['options']['text_encoder']}"
    command += (f"avgen train {config['task']} --run-dir {config['run_dir']} --max-steps {config['max_steps']} "
               f"--batch-size {config['batch_size']} --learning-rate {config['learning_rate']} "
               f"--warmup-steps {config['warmup_steps']} --seed {config['seed']} --mixed-precision {config['mixed_precision']}"
               f"{init} {options}".rstrip() + f"\navgen export {config['run_dir']} {name} {destination}")
    evaluation = "\n".join(f"- {k}: {v:.4g}" if isinstance(v, float) else f"- {k}: {v}" for k, v in summary["eval"].items()) or "- (none logged)"
    calibration = ""
    if "scaling_factor" in report:
        source = (f"kept from {report['scaling_factor_from']}, whose encoder this run froze" if "scaling_factor_from" in report
                  else f"latent std {report['latent_std']:.4g} on 32 held-aside clips")
        calibration = f"\n- scaling_factor {report['scaling_factor']} ({source})"
    trained = f"Trained by `avgen train {config['task']}` on {data}."
    if name == "text_encoder" and config["options"].get("train_text_encoder", True) is False:
        trained = (f"Frozen (not trained) by `avgen train {config['task']}`: the weights of {weights_from}, unchanged, "
                   f"which the run's transformer learned to read; its model card there tells how it was trained.")
    return f"""# {name} (preset {Path(config['preset']).name})

{trained}

## Model details
- {report['class']}, {report['parameters'] / 1e6:.2f}M parameters, {report['dtype']} safetensors{calibration}

## Training data
- {data}

## Training procedure
- steps: {summary['steps']} of {config['max_steps']}, batch {config['batch_size']}, learning rate {config['learning_rate']} (warm-up {config['warmup_steps']}, cosine to {config['min_lr_ratio']}x), seed {config['seed']}
- training time: {summary['train_seconds']} s of logged steps; precision: {config['mixed_precision']}
{machine_lines(summary['machines'], summary['steps'])}
- initialised from: {initialised}

## Evaluation
During training, on the task's held-aside clips (last evaluation):
{evaluation}

### Metrics
Judged figures (world benchmark) are in the pipeline's MODEL_CARD.md and `benchmarks/results/`.

## Limitations
Those of the pipeline it belongs to (its MODEL_CARD.md).

## Reproduce
```bash
{command}
```
"""


def _frozen_encoder_source(run_dir: str | Path, name: str) -> Path | None:
    """The exported component whose encoder the run kept frozen (option train_encoder=false), else None."""
    config_path = Path(run_dir) / "config.json"
    if not config_path.is_file():
        return None
    config = json.loads(config_path.read_text())
    if config["options"].get("train_encoder", True) or not config.get("init_from"):
        return None
    return Path(config["init_from"]) / name


def export(run_dir: str | Path, name: str, destination: str | Path, dtype: str = "fp16", calibration_clips: int = 32) -> dict:
    """Write component `name` of the run to `destination` in `dtype`, with its MODEL_CARD.md; returns what was done."""
    module = load_trained(run_dir, name).eval()
    report = {"run_dir": str(run_dir), "component": name, "dtype": dtype, "class": type(module).__name__,
              "parameters": sum(p.numel() for p in module.parameters())}
    if "scaling_factor" in getattr(module, "config", {}):
        frozen_from = _frozen_encoder_source(run_dir, name)
        if frozen_from:  # a decoder trained alone keeps its encoder's latent space, scale included: the models
            # trained on those latents (t2v, edit) must see exactly the numbers they were trained on
            module.register_to_config(scaling_factor=type(module).load_config(frozen_from)["scaling_factor"])
            report["scaling_factor_from"] = str(frozen_from)
        else:
            report["latent_std"] = latent_std(module, calibration_clips)
            module.register_to_config(scaling_factor=round(1.0 / report["latent_std"], 6))
        report["scaling_factor"] = module.config.scaling_factor
    module.to(DTYPES[dtype]).save_pretrained(destination, safe_serialization=True)
    pretrained = _pretrained_text_encoder(run_dir, name)
    if pretrained:  # its own tokenizer goes with it (assemble finds it there)
        load_encoder_tokenizer(pretrained).save_pretrained(destination)
    if (Path(run_dir) / "config.json").is_file():
        (Path(destination) / "MODEL_CARD.md").write_text(model_card(run_dir, name, destination, report))
    return report


def _pretrained_text_encoder(run_dir: str | Path, name: str) -> str | None:
    """The pretrained encoder the run named with the option text_encoder (folder or hub id), for its text_encoder."""
    config_path = Path(run_dir) / "config.json"
    if name != "text_encoder" or not config_path.is_file():
        return None
    return json.loads(config_path.read_text())["options"].get("text_encoder") or None


PIPELINE_COMPONENTS = ("text_encoder", "vae", "transformer", "audio_text_encoder", "audio_vae", "audio_transformer", "video_encoder", "upsampler")


EDIT_COMPONENTS = ("text_encoder", "transformer")  # the edit model's own; the rest comes from the base pipeline
VIDEO_COMPONENTS = ("text_encoder", "vae", "transformer")  # TextToVideoPipeline's models


def _load_components(folder: Path, names, optional=()) -> dict:
    missing = [name for name in names if name not in optional and not (folder / name / "config.json").is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks the component folder(s) {missing}; export them first")
    return {name: component_class(folder / name).from_pretrained(folder / name, use_safetensors=True)
            for name in names if (folder / name / "config.json").is_file()}


def assemble(
    folder: str | Path,
    dtype: str = "fp16",
    edit_base: str | Path | None = None,
    video_only: bool = False,
    tokenizer: str | Path | None = None,
) -> Path:
    """Make `folder` (exported component folders, e.g. weights/tiny/vae, .../transformer) a complete pipeline:
    save_pretrained writes model_index.json, the tokenizer and the scheduler beside them.

    tokenizer: the folder of the tokenizer the text encoders were trained with (the run's preset has it,
    e.g. pipelines/tiny/tokenizer); default: the text encoder's own (`folder`/text_encoder holds one when it
    is a pretrained encoder that `avgen export` wrote with its tokenizer), else `folder`/tokenizer, else the
    edit base's. There is no silent fallback: a text encoder fed another tokenizer's ids still runs, and
    draws the unconditional clip.

    edit_base: `folder` holds an edit model (its transformer and text encoder), and the autoencoder and the
    sound models (to regenerate audio) come from this AVGenPipeline folder: a VideoEditPipeline is written.
    video_only: `folder` holds the text-to-video models only: a TextToVideoPipeline is written (a silent
    pipeline, e.g. to judge the video model before the sound models are trained).
    """
    folder = Path(folder)
    candidates = ([Path(tokenizer)] if tokenizer is not None else
                  [folder / "text_encoder", folder / "tokenizer"] + ([Path(edit_base) / "tokenizer"] if edit_base else []))
    found = [path for path in candidates if (path / "tokenizer_config.json").is_file()]
    if not found:
        raise FileNotFoundError(f"no tokenizer at {[str(p) for p in candidates]}: copy the one the text encoders were trained "
                                "with there (e.g. pipelines/tiny/tokenizer) or pass it")
    shared = dict(tokenizer=AutoTokenizer.from_pretrained(found[0]), scheduler=FlowMatchEulerDiscreteScheduler())
    if video_only:
        pipeline = TextToVideoPipeline(**shared, **_load_components(folder, VIDEO_COMPONENTS))
    elif edit_base is None:
        pipeline = AVGenPipeline(**shared, **_load_components(folder, PIPELINE_COMPONENTS, optional=("upsampler",)))
    else:
        base = _load_components(Path(edit_base), ("vae", "audio_text_encoder", "audio_vae", "audio_transformer", "video_encoder"))
        pipeline = VideoEditPipeline(**shared, **base, **_load_components(folder, EDIT_COMPONENTS))
    pipeline.to(DTYPES[dtype]).save_pretrained(folder, safe_serialization=True)
    return folder


def _edit_init(init: str | None) -> str | None:
    """How the edit task's option init started the run, for the model card (None without one)."""
    if not init:
        return None
    path = Path(init) / "transformer" / "config.json"
    if path.is_file() and is_edit_transformer(json.loads(path.read_text())):
        return f"the edit model of {init} (its transformer and text encoder, trained on)"
    return f"the text-to-video model of {init} (input channels doubled, the new ones zero)"
