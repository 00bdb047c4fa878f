"""The data a saved student was trained on, read again with its own columns, split and scaler."""

from __future__ import annotations

from distilts.data import Dataset, Scaler, load_dataset
from distilts.data.panel import PanelDataset
from distilts.errors import DataError

LONG_ARGS = ("id_column", "timestamp_column", "target_column", "max_windows_per_series")
# the data options a student directory records (config.json "data") and reads again
SAVED_ARGS = (*LONG_ARGS, "past_covariates", "future_covariates", "static_covariates", "calendar", "static_table")


def dataset_for_student(config: dict, data_args: dict) -> Dataset:
    """Load the series with the student's columns, normalized with the student's own scaler."""
    args = dict(data_args)
    if args.get("columns") and list(args["columns"]) != list(config["columns"]):
        raise DataError(
            f"--columns {args['columns']} differ from the student's columns {config['columns']}; "
            "the student needs exactly its own columns in that order."
        )
    args["columns"] = config["columns"]
    saved = config.get("data", {})
    for key, saved_key in (
        ("split", "split_scheme"),
        ("fill", "fill"),
        ("date_column", "date_column"),
        *((k, k) for k in SAVED_ARGS),
    ):
        if args.get(key) in (None, "auto") and saved.get(saved_key) is not None:
            args[key] = saved[saved_key]
    calendar = (config.get("covariates") or {}).get("calendar")
    if calendar and args.get("calendar") is not None:
        args["calendar_features"] = calendar["features"]  # the student's own, whatever span this data has
    try:
        dataset = load_dataset(**args)
    except DataError as exc:
        raise DataError(f"{exc} (The student was trained on columns {config['columns']}.)") from None
    if isinstance(dataset, PanelDataset):  # a global student: per-series scaling, identity scaler
        dataset.windows("test", int(config["lookback"]), int(config["horizon"]))  # fixes its per-series split
        if dataset.covariates is not None and config.get("covariates"):
            dataset.covariates.apply_stats(config["covariates"]["stats"])
        return dataset
    scaler = Scaler.from_dict(config["scaler"])
    covs = dataset.covariates
    if covs is not None and config.get("covariates"):
        covs.apply_stats(config["covariates"]["stats"])  # the student's own train statistics
    return Dataset(dataset.series, dataset.split, scaler, scaler.transform(dataset.series.values), covs)
