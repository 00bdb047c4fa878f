"""`distilts search` folds the chosen configuration's seeds into one student when the student is linear in its
weights, and keeps the fold only when it lowers the validation MSE."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner

from distilts.choose.fold import fold_seeds, linear_in_weights, seed_group
from distilts.cli import cli
from distilts.students import MLP, DLinear

CANDIDATE = {
    "student": "dlinear",
    "kwargs": {"individual": False},
    "lookback": 24,
    "backend": "onnx",
    "precision": "fp32",
    "lr": 0.001,
}


def test_only_a_student_linear_in_its_weights_is_folded():
    assert linear_in_weights(DLinear(24, 6, 2))
    assert not linear_in_weights(DLinear(24, 6, 2, revin=True))
    assert not linear_in_weights(DLinear(24, 6, 2, quantiles=(0.1, 0.5, 0.9)))
    assert not linear_in_weights(MLP(24, 6, 2, d_model=8))


def test_averaged_weights_forecast_the_average_forecast():
    torch.manual_seed(0)
    a, b, folded = (DLinear(24, 6, 3) for _ in range(3))
    for m in (a, b):
        for p in m.parameters():
            torch.nn.init.normal_(p)
    folded.load_state_dict({k: (a.state_dict()[k] + b.state_dict()[k]) / 2 for k in a.state_dict()})
    x = torch.randn(5, 24, 3)
    torch.testing.assert_close(folded(x), (a(x) + b(x)) / 2, rtol=1e-5, atol=1e-5)


def test_seeds_fold_only_when_validation_improves(tmp_path):
    records = []
    for n, seed in enumerate((1, 2)):
        student = tmp_path / "trials" / f"{n:04d}" / "student"
        res = CliRunner().invoke(
            cli,
            [
                "distill",
                "--no-kd",
                "--beta",
                "0",
                "--student",
                "dlinear",
                "--lookback",
                "24",
                "--horizon",
                "6",
                "--epochs",
                "1",
                "--stride",
                "8",
                "--seed",
                str(seed),
                "--quiet",
                "--out",
                str(student),
            ],
        )
        assert res.exit_code == 0, res.output
        metrics = json.loads((student / "metrics.json").read_text())
        records.append(
            {
                "number": n,
                "candidate": {**CANDIDATE, "backend": ["onnx", "tflite"][n]},
                "label": "dlinear",
                "val_mse": metrics["val"]["mse"],
                "val_mae": metrics["val"]["mae"],
                "test_mse": metrics["test"]["mse"],
                "test_mae": metrics["test"]["mae"],
            }
        )
    other = {**records[0], "number": 9, "candidate": {**CANDIDATE, "lr": 0.01}}
    assert [r["number"] for r in seed_group([*records, other], records[0])] == [0, 1]  # backend: same seed group

    worse = {**records[0], "val_mse": 0.0}  # nothing beats it on validation: kept as it is
    assert fold_seeds(tmp_path, records, worse, None, print) == (worse, None)

    better = {**records[0], "val_mse": 1e9}
    chosen, weights = fold_seeds(tmp_path, records, better, None, print)
    assert weights is not None and weights.is_file()
    assert chosen["folded"]["trials"] == [0, 1] and chosen["val_mse"] < 1e9 and "2 seeds folded" in chosen["label"]
