"""Commands of this stage (placeholders until the stage is built)."""

from distilts.cli import not_built

compile_cmd = not_built("compile", "the compile stage")
