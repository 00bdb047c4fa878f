"""Hand-made test artifacts (until `distilts compile` lands): a tiny torch model with in-graph
normalization exported to ONNX / OpenVINO IR / TFLite, plus a manifest.json per docs/design.md.

Uses torch, so call it in the test process, never inside a runtime subprocess.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Sequence

import numpy as np

from distilts.data import load_dataset
from distilts.utils import sha256_file, write_json

LOOKBACK, HORIZON = 24, 6


def _module(mean: np.ndarray, std: np.ndarray, lookback: int, horizon: int, seed: int = 0):
    import torch

    class Tiny(torch.nn.Module):
        """Normalize -> linear map over time per variate + a small cross-variate mix -> denormalize."""

        def __init__(self) -> None:
            super().__init__()
            g = torch.Generator().manual_seed(seed)
            d = len(mean)
            self.time = torch.nn.Linear(lookback, horizon)
            with torch.no_grad():
                self.time.weight.copy_(torch.randn(horizon, lookback, generator=g) * 0.05 + 1.0 / lookback)
                self.time.bias.copy_(torch.randn(horizon, generator=g) * 0.01)
            self.mix = torch.nn.Parameter(torch.eye(d) + 0.05 * torch.randn(d, d, generator=g))
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

        def forward(self, x):  # [B, L, D] raw -> [B, H, D] raw
            z = (x - self.mean) / self.std
            y = self.time(z.transpose(1, 2)).transpose(1, 2) @ self.mix
            return y * self.std + self.mean

    return Tiny().eval()


def make_artifact(
    out_dir: str | Path,
    backend: str = "onnx",
    batches: Sequence[int | None] = (None,),
    lookback: int = LOOKBACK,
    horizon: int = HORIZON,
    seed: int = 0,
) -> Path:
    """Write `<out_dir>/<backend>-fp32/` for the synthetic series' columns; return that directory."""
    import torch

    ds = load_dataset(None)
    mean, std = ds.scaler.mean.astype(np.float32), ds.scaler.std.astype(np.float32)
    model = _module(mean, std, lookback, horizon, seed)
    d = len(ds.columns)
    art = Path(out_dir) / f"{backend}-fp32"
    art.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(max(b or 2 for b in batches), lookback, d)
    entries: list[dict] = []
    if backend in ("onnx", "openvino"):
        onnx_path = art / "model.onnx"
        torch.onnx.export(model, (example,), str(onnx_path), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
        if backend == "openvino":
            import openvino as ov

            ov.save_model(ov.convert_model(str(onnx_path)), str(art / "model.xml"), compress_to_fp16=False)
            onnx_path.unlink()
            entries = [{"file": "model.xml", "batch": None}, {"file": "model.bin", "batch": None, "role": "weights"}]
        else:
            entries = [{"file": "model.onnx", "batch": None}]
    elif backend == "tflite":
        import litert_torch

        for b in batches:
            name = f"model-b{b}.tflite"
            litert_torch.convert(model, (torch.zeros(b, lookback, d),)).export(str(art / name))
            entries.append({"file": name, "batch": b})
    else:
        raise ValueError(backend)
    for e in entries:
        e["sha256"] = sha256_file(art / e["file"])
        e["size"] = (art / e["file"]).stat().st_size

    x, _ = ds.windows("test", lookback, horizon).batch([0])
    g_in = ds.scaler.inverse(x[0])
    with torch.no_grad():
        g_out = model(torch.tensor(g_in[None])).numpy()[0]
    write_json(art / "manifest.json", {
        "format": "distilts-artifact", "version": 1, "backend": backend, "precision": "fp32",
        "models": entries,
        "input": {"name": "x", "shape": [None if None in batches else batches[0], lookback, d], "dtype": "float32"},
        "output": {"name": "y", "shape": [None if None in batches else batches[0], horizon, d], "dtype": "float32"},
        "lookback": lookback, "horizon": horizon, "columns": ds.columns, "freq_seconds": 3600,
        "normalization": "in-graph", "scaler": ds.scaler.to_dict(),
        "student": {"name": "tiny-test", "param_count": int(sum(p.numel() for p in model.parameters())),
                    "config_sha256": "0" * 64},
        "target": None, "quantization": None,
        "verification": {"windows": 1, "max_abs_err": 0.0, "rel_mse": 0.0, "tolerance": {"rel_mse": 1e-4},
                         "passed": True, "reference": "pytorch student"},
        "golden": {"input": g_in.tolist(), "output": g_out.tolist(), "atol": 1e-3, "rtol": 1e-4},
        "opset": 17 if backend != "tflite" else None, "created_by": "tests/artifact_factory.py",
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    })
    return art


_CACHE: dict[str, Path] = {}
SPECS = {"onnx": (None,), "openvino": (None,), "tflite": (1, 4)}


def artifact(tmp_path_factory, backend: str) -> Path:
    """One artifact per backend per test session (TFLite: files for batch 1 and 4)."""
    if backend not in _CACHE:
        root = tmp_path_factory.mktemp(f"artifact-{backend}")
        _CACHE[backend] = make_artifact(root, backend, SPECS[backend])
    return _CACHE[backend]


def copy_artifact(src: Path, dst: Path) -> Path:
    """A private copy to tamper with."""
    import shutil

    return Path(shutil.copytree(src, dst))
