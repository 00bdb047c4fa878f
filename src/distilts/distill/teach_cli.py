"""Commands of this stage (placeholders until the stage is built)."""

from distilts.cli import not_built

teach = not_built("teach", "the teacher stage")
