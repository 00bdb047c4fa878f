"""`distilts forecast`: continued timestamps, the manifest's columns, plots, and clear errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from click.testing import CliRunner

from artifact_factory import artifact
from distilts.cli import cli
from distilts.data.synthetic import synthetic_series


@pytest.fixture(scope="module")
def onnx_art(tmp_path_factory):
    return artifact(tmp_path_factory, "onnx")


def _run(args):
    res = CliRunner().invoke(cli, args)
    return res


def _read(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _write_series(
    path, n=200, step_minutes=15, columns=("load", "temperature", "solar", "price"), dates=True, extra=("other",)
):
    s = synthetic_series(n_rows=n)
    start = np.datetime64("2023-03-01T00:00:00")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow((["timestamp"] if dates else []) + list(extra) + list(columns))
        for i in range(n):
            d = str(start + np.timedelta64(step_minutes * i, "m")).replace("T", " ")
            w.writerow(
                ([d] if dates else [])
                + ["x"] * len(extra)
                + [f"{v:.5f}" for v in s.values[i, [s.columns.index(c) for c in columns]]]
            )
    return path


def test_forecast_synthetic_default(tmp_path, onnx_art):
    out = tmp_path / "f.csv"
    res = _run(["forecast", str(onnx_art), "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = _read(out)
    assert rows[0] == ["date", "load", "temperature", "solar", "price"]
    assert len(rows) == 1 + 6
    # synthetic: hourly from 2024-01-01 00:00, 8760 rows -> last row 2024-12-30 23:00
    assert [r[0] for r in rows[1:3]] == ["2024-12-31 00:00:00", "2024-12-31 01:00:00"]
    assert all(np.isfinite(float(v)) for r in rows[1:] for v in r[1:])


def test_forecast_csv_at_row_with_plot(tmp_path, tmp_path_factory):
    art = artifact(tmp_path_factory, "tflite")
    data = _write_series(tmp_path / "d.csv", columns=("price", "solar", "temperature", "load"))  # reordered
    out, png = tmp_path / "f.csv", tmp_path / "f.png"
    res = _run(
        [
            "forecast",
            str(art),
            "--data",
            str(data),
            "--at-row",
            "99",
            "--out",
            str(out),
            "--plot",
            str(png),
            "--threads",
            "1",
        ]
    )
    assert res.exit_code == 0, res.output
    rows = _read(out)
    assert rows[0] == ["date", "load", "temperature", "solar", "price"]  # the manifest's order
    # row 99 is 2023-03-01 00:00 + 99 * 15 min = 24:45 -> next step 25:00
    assert [r[0] for r in rows[1:4]] == ["2023-03-02 01:00:00", "2023-03-02 01:15:00", "2023-03-02 01:30:00"]
    assert png.stat().st_size > 5000 and png.read_bytes()[:4] == b"\x89PNG"


def test_forecast_matches_python_api(tmp_path, onnx_art):
    from distilts.runtime import Forecaster

    data = _write_series(tmp_path / "d.csv", step_minutes=60)
    res = _run(["forecast", str(onnx_art), "--data", str(data), "--out", "-"])
    assert res.exit_code == 0, res.output
    got = np.array([[float(v) for v in r[1:]] for r in list(csv.reader(res.stdout.splitlines()))[1:]])
    s = synthetic_series(n_rows=200)
    want = Forecaster.load(onnx_art).predict(np.round(s.values[-24:], 5))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_no_dates_gives_step_column(tmp_path, onnx_art):
    data = _write_series(tmp_path / "d.csv", dates=False, extra=())
    out = tmp_path / "f.csv"
    res = _run(["forecast", str(onnx_art), "--data", str(data), "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = _read(out)
    assert rows[0][0] == "step" and [r[0] for r in rows[1:]] == [str(i) for i in range(1, 7)]


def test_missing_column_is_named(tmp_path, onnx_art):
    data = _write_series(tmp_path / "d.csv", columns=("load", "temperature", "price"))
    res = _run(["forecast", str(onnx_art), "--data", str(data), "--out", str(tmp_path / "f.csv")])
    assert res.exit_code != 0
    assert "lacks column(s) solar" in res.output and "load, temperature, solar, price" in res.output
    assert not (tmp_path / "f.csv").exists()


def test_bad_at_row_and_nan(tmp_path, onnx_art):
    data = _write_series(tmp_path / "d.csv")
    res = _run(["forecast", str(onnx_art), "--data", str(data), "--at-row", "10"])
    assert res.exit_code != 0 and "needs a window of 24" in res.output
    res = _run(["forecast", str(onnx_art), "--data", str(data), "--at-row", "500"])
    assert res.exit_code != 0 and "outside the data" in res.output
    text = data.read_text().splitlines()
    text[-3] = text[-3].rsplit(",", 1)[0] + ",nan"
    data.write_text("\n".join(text) + "\n")
    res = _run(["forecast", str(onnx_art), "--data", str(data)])
    assert res.exit_code != 0 and "--fill" in res.output


def test_tampered_artifact_cli_error(tmp_path, tmp_path_factory):
    from artifact_factory import copy_artifact

    art = copy_artifact(artifact(tmp_path_factory, "onnx"), tmp_path / "a")
    (art / "model.onnx").write_bytes(b"garbage")
    res = _run(["forecast", str(art)])
    assert res.exit_code != 0 and "Checksum mismatch" in res.output and "Traceback" not in res.output
