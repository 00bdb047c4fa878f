"""The `distilts` command line. Each stage owns its commands in `<stage>/cli.py`; they are
imported only when used (or listed), and none of them imports torch at module level."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from distilts import __version__
from distilts.allocator import reexec_under_jemalloc
from distilts.errors import DistiltsError

# command name -> "module:attribute"; order is the order of the help listing
COMMANDS = {
    "train-teacher": "distilts.distill.train_teacher_cli:train_teacher",
    "teach": "distilts.cache.cli:teach",
    "distill": "distilts.distill.cli:distill",
    "students": "distilts.students.cli:students_cmd",
    "eval": "distilts.distill.cli:eval_cmd",
    "compile": "distilts.compile.cli:compile_cmd",
    "targets": "distilts.targets.cli:targets_cmd",
    "search": "distilts.choose.cli:search_cmd",
    "forecast": "distilts.batch.cli:forecast",
    "profile": "distilts.profile.cli:profile",
    "serve": "distilts.serve.cli:serve",
    "deploy": "distilts.deploy.cli:deploy",
    "bundle": "distilts.deploy.cli:bundle",
}


class LazyGroup(click.Group):
    """Imports a command's module only when that command is listed or run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):  # keep click's layout, but keep order
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            rows.append((name, cmd.get_short_help_str(limit=formatter.width - 20)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DistiltsError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="distilts")
def cli() -> None:
    """Distil time-series foundation models into tiny forecasters for CPUs and edge devices.

    \b
    The stages, in order:
      train-teacher  train a PatchTST teacher here (when no pretrained TSFM weights are at hand)
      teach     run a frozen teacher (TimeMoE, Chronos, Moirai) once and cache its outputs
      distill   train a small student (`distilts students`) from ground truth and the teacher
      students  the students distill can train, their options and sizes
      eval      score a student on the standard test split
      compile   export a student to ONNX / OpenVINO / TFLite, fp32 or int8, verified
      search    the most accurate student that fits a device budget (distil + compile per trial)
      forecast  forecast from raw values with a compiled artifact (no torch needed)
      profile   latency, memory and accuracy, student vs teacher
      serve     serve an artifact's forecasts over HTTP (POST /forecast, KServe v2)
      deploy    put an artifact into a model store (versions, atomic switch, rollback)
      bundle    an offline install bundle for a device (wheels, install script, systemd unit)

    With no --data, commands run on a built-in synthetic series.
    """


# third-party import-time chatter that says nothing to a distilts user (optional CUDA kernels of
# torchao not loading on a CPU machine; a torch deprecation notice about torchao's own enums)
QUIET_LOGGERS = ("torchao", "torch.utils._pytree")


def main() -> None:
    reexec_under_jemalloc(sys.argv[1:])
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    cli(prog_name="distilts")


if __name__ == "__main__":
    main()
