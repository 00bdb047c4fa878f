"""distilts: distil time-series foundation models into tiny CPU/edge forecasters.

Importing the package is cheap: heavy libraries (torch, transformers, backends) load only
inside the stage that needs them.
"""

__version__ = "0.1.0"

from distilts.errors import DistiltsError  # noqa: E402

__all__ = ["DistiltsError", "__version__"]
