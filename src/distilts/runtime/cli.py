"""Commands of this stage (placeholders until the stage is built)."""

from distilts.cli import not_built

forecast = not_built("forecast", "the runtime stage")
profile = not_built("profile", "the runtime stage")
