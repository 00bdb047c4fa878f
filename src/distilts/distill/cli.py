"""Commands of this stage (placeholders until the stage is built)."""

from distilts.cli import not_built

distill = not_built("distill", "the distill stage")
eval_cmd = not_built("eval", "the distill stage")
