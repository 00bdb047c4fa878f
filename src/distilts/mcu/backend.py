"""TFLite Micro (`tflm`) and Ethos-U (`ethos-u`) formats: one full-int8 TFLite model, verified in TFLite Micro.

The builder is distilts.mcu.build.build on the job's int8 module (its student on the normalized
scale: the folded DLinear, or the student itself); the target profile's SRAM/flash (and, for Ethos-U,
its Vela accelerator) size the artifact. The model file is an ordinary TFLite file that LiteRT also
runs, so the Linux runtime loads it (`BACKEND`) and the golden self-check holds on any Linux box.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distilts.compile import full_int8
from distilts.compile.verify import Candidate, calibration
from distilts.errors import DistiltsError
from distilts.mcu import build as mcu
from distilts.mcu import tflm_firmware
from distilts.runtime.inputs import window_only

EXT = ".tflite"
BACKEND = "tflite"  # the runtime backend that loads the model file on a Linux device
EXPORT_PASS = {
    "name": "litert-converter+static-int8",
    "stage": "export",
    "by": "litert_torch.convert + ai_edge_quantizer static_wi8_ai8 (int8 I/O, scaler in the I/O quantization)",
}
SIDE_FILES = {
    "model_data.cc": "source",
    "model_data.h": "source",
    "main.cc": "example",
    "model_vela.tflite": "vela",
    "vela-summary.csv": "report",
    "vela-report.txt": "report",
    **tflm_firmware.FILES,  # TFLite Micro firmware for the profile's board (mcu/tflm_firmware.py)
}


def build(
    job,
    module,
    config: dict,
    scratch: Path,
    verify_x: np.ndarray,
    ref: np.ndarray,
    calib_x: np.ndarray | None,
    fp32_module=None,
) -> list[Candidate]:
    """The full-int8 model + C sources (+ Vela output) in `scratch`, verified in TFLite Micro."""
    t = job.target
    if job.format == "ethos-u" and (t is None or not t.accelerator):
        raise DistiltsError(
            "--target ethos-u needs an accelerator: use a named target (ethos-u55-128, "
            "ethos-u65-256; `distilts targets`)."
        )
    budget = None
    if t is not None and t.sram_kib:
        budget = mcu.Budget(t.name, t.sram_kib * 1024, t.flash_kib * 1024, t.accelerator)
    student = getattr(module, "student", module)  # the int8 module keeps the scaler outside its student
    record = mcu.build(student, config, window_only(calibration(calib_x)), window_only(verify_x), ref, scratch, budget)
    errs = {k: v for k, v in record["verification"].items() if k != "windows"}  # + per-level figures (quantiles)
    preds = record.pop("preds")
    side = {name: (name, role) for name, role in SIDE_FILES.items() if (scratch / name).exists()}
    return [
        Candidate(
            {"model.tflite": 1},
            full_int8.METHOD,
            full_int8.NOTE,
            errs,
            preds=preds,
            side=side,
            facts={"mcu": {k: v for k, v in record.items() if k != "io"}, "io": record["io"]},
        )
    ]
