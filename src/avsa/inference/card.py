"""The model card (``README.md``) of a saved model folder, in the Hugging Face card format.

:func:`model_card` writes it from the content of ``config.json``
(:mod:`avsa.inference.hub`): YAML front matter (library, licence, tags), what
the model is and how to use it, what it was trained on, its configuration,
its in-domain results with their chance levels, how to cite the method, and
the licence.
"""

from __future__ import annotations

import json

CITATION = """@article{wang2022avsa,
  author  = {Wang, Shanshan and Politis, Archontis and Mesaros, Annamaria and Virtanen, Tuomas},
  title   = {Self-Supervised Learning of Audio Representations From Audio-Visual Data Using Spatial Alignment},
  journal = {IEEE Journal of Selected Topics in Signal Processing},
  volume  = {16},
  number  = {6},
  pages   = {1467--1479},
  year    = {2022},
  doi     = {10.1109/JSTSP.2022.3180592}
}"""
"""BibTeX of the paper the method follows."""

TAGS = ("audio", "video", "audio-visual", "self-supervised-learning", "ambisonics", "first-order-ambisonics",
        "360-video", "spatial-audio", "representation-learning")


def _results_table(results: list[dict]) -> str:
    if not results:
        return ("No evaluation results were saved with this model (run `avsa evaluate` on its run folder "
                "before exporting to include them).")
    lines = ["| task | metric | value [95% interval] | chance | n |", "| --- | --- | --- | --- | --- |"]
    for r in results:
        scale, unit = (100.0, " %") if r.get("metric") == "accuracy" else (1.0, "")
        value = f"{scale * r['value']:.1f}{unit} [{scale * r['low']:.1f}, {scale * r['high']:.1f}]"
        chance = f"{scale * r['chance']:.1f}{unit}" if r.get("chance") is not None else "—"
        lines.append(f"| {r['task']} | {r.get('metric', '')} | {value} | {chance} | {r.get('n', '')} |")
    return "\n".join(lines)


def model_card(meta: dict) -> str:
    """The ``README.md`` of a saved model, from its ``config.json`` content (``meta``)."""
    config, front, training = meta["config"], meta["front_end"], meta.get("training") or {}
    data = config["data"]
    stage = meta["stage"].upper()
    tags = "\n".join(f"- {tag}" for tag in TAGS)
    cache = training.get("cache") or "(not recorded)"
    clips = training.get("n_clips")
    clips_text = f"{clips} clips of split `{training.get('split', data['split'])}`" if clips else "clips: not known"
    return f"""---
library_name: avsa
license: mit
tags:
{tags}
pipeline_tag: feature-extraction
---

# avsa {stage} model ({data['format']} audio, {data['features']} features, {data['crops']} crops)

Audio and video encoders trained by self-supervised audio-visual
{'spatial alignment (AVSA)' if meta['stage'] == 'avsa' else 'correspondence (AVC)'} on 360° video
with first-order Ambisonics, with the `avsa` library.

- Audio input: {front['audio_convention']} FOA, {front['window_s']:g}-s windows at
  {front['sample_rate']} Hz (any rate is resampled), as `{data['format']}` audio with
  `{data['features']}` features{', log-mel bands normalised with the statistics stored in `model.safetensors`' if front['normalized'] else ''}.
- Video input: {front['n_frames']} frames at {front['fps']:g} fps, gnomonic crops of {front['crop_size']} px
  from equirectangular frames decoded {front['equirect_width']} px wide.
- Embeddings: {front['embedding_dim']} values per window from each encoder.

## Use

```python
import avsa

model = avsa.load("path/to/this/folder")
emb, times = model.embed_audio(foa, sample_rate)   # foa: (4, N) ambiX; emb (T, {front['embedding_dim']})
```

`avsa.load` reads `config.json` and `model.safetensors` only; nothing is unpickled.

## Training data

- Cache: `{cache}` ({clips_text})
- Stage `{meta['stage']}`, step {meta.get('step')}, code commit `{meta.get('commit', 'unknown')}`

## Configuration

The resolved training configuration (also in `config.json`):

```json
{json.dumps(config, indent=1)}
```

## In-domain results

{_results_table(meta.get('results') or [])}

## Citation

```bibtex
{CITATION}
```

## Licence

MIT.
"""
