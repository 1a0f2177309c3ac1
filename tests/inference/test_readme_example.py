"""The README's Python example runs verbatim against a tiny trained model."""

import re
from pathlib import Path

import numpy as np
import soundfile as sf

from avsa.inference.model import save_pretrained

README = Path(__file__).resolve().parents[2] / "README.md"

FALLBACK = '''
import avsa
import soundfile as sf

model = avsa.load("demo_out/model")            # a saved model folder, a run folder or a checkpoint
foa, sr = sf.read("clip.wav", always_2d=True)  # (N, 4) ambiX: ACN order, SN3D gains; any rate
emb, times = model.embed_audio(foa.T, sr)      # (T, D) embeddings, window centres in seconds
print(emb.shape, times[:3])
model.save_pretrained("my_model")              # config.json, model.safetensors, README.md
'''
"""Used only while README.md has no ```python block yet."""


def first_python_block(text: str) -> str | None:
    match = re.search(r"^```python[ \t]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    return match.group(1) if match else None


def test_the_readme_python_example_runs(tiny_run, tmp_path, monkeypatch, capsys):
    code = first_python_block(README.read_text()) or FALLBACK
    save_pretrained(tiny_run, tmp_path / "demo_out" / "model")
    foa = np.random.default_rng(0).standard_normal((2 * 48000, 4)) * 0.1
    sf.write(tmp_path / "clip.wav", foa, 48000, subtype="FLOAT")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    assert re.match(r"\(\d+, \d+\) \[0\.5 +0\.6 +0\.7\]", out), out
    assert sorted(p.name for p in (tmp_path / "my_model").iterdir()) == ["README.md", "config.json",
                                                                         "model.safetensors"]
