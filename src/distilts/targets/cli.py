"""Commands of this stage (placeholders until the stage is built)."""

from distilts.cli import not_built

targets_cmd = not_built("targets", "the targets stage")
