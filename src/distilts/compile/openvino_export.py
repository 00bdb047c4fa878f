"""OpenVINO IR export (convert_model from a torch.export program, fp32 weights) and NNCF int8 candidates."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distilts.errors import require


def convert(wrapper, lookback: int, n_variates: int):
    """An `openvino.Model` of `wrapper` with input `x [?, L, D]` and output `y`."""
    import torch

    ov = require("openvino", "compile", "OpenVINO export")
    from distilts.compile.wrapper import batch_dim_shapes, example_input

    ep = torch.export.export(wrapper, example_input(lookback, n_variates), dynamic_shapes=batch_dim_shapes())
    model = ov.convert_model(ep)
    model.reshape({model.inputs[0]: ov.PartialShape([-1, lookback, n_variates])})
    model.inputs[0].get_tensor().set_names({"x"})
    model.outputs[0].get_tensor().set_names({"y"})
    return model


def save(model, xml_path: Path) -> list[Path]:
    """Write `model.xml` + `model.bin` with fp32 weights (no silent fp16 compression)."""
    ov = require("openvino", "compile", "OpenVINO export")
    ov.save_model(model, str(xml_path), compress_to_fp16=False)
    return [xml_path, xml_path.with_suffix(".bin")]


def int8_candidates(model, calib: np.ndarray, overflow_fix: bool = False) -> dict[str, tuple[object, str]]:
    """NNCF post-training int8 variants of `model`: {method: (openvino.Model, note)}.

    overflow_fix: NNCF's fix for x86 without VNNI (7-bit weights in every layer, so u8 x s8 products
    do not saturate int16); off for arm64 and VNNI x86, which compute them exactly.

    nncf-default: the default preset, int8 weights and activations. nncf-transformer:
    model_type=TRANSFORMER, which adds SmoothQuant (moves activation outliers into the weights); it
    often wins on attention models. nncf-weights: int8 weights only (activations stay f32), the
    fallback when calibrated activation ranges do not hold on held-out data (e.g. a trending series).
    """
    nncf = require("nncf", "compile", "OpenVINO int8 quantization")
    import logging

    logging.getLogger("nncf").setLevel(logging.ERROR)
    dataset = nncf.Dataset([calib[i:i + 1] for i in range(len(calib))])
    n = len(calib)
    out: dict[str, tuple[object, str]] = {}
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    adv = AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE if overflow_fix else OverflowFix.DISABLE)
    of = ", overflow fix (no int16 saturation on x86 without VNNI)" if overflow_fix else ""
    q = nncf.quantize(model, dataset, subset_size=n, fast_bias_correction=True, advanced_parameters=adv)
    out["nncf-default"] = (q, f"nncf.quantize (mixed preset), int8 weights and activations calibrated on {n} "
                              f"train windows{of}")
    q = nncf.quantize(model, dataset, subset_size=n, model_type=nncf.ModelType.TRANSFORMER, advanced_parameters=adv)
    out["nncf-transformer"] = (q, f"nncf.quantize model_type=TRANSFORMER (SmoothQuant), calibrated on {n} "
                                  f"train windows{of}")
    q = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
    out["nncf-weights"] = (q, "nncf.compress_weights INT8_ASYM: per-channel int8 weights, f32 activations "
                              "(no calibration needed)")
    return out
