"""`python -m distilts ...`: the same CLI as the `distilts` script (used by torchrun's `-m` and by
interpreters without the console script on PATH, e.g. an emulated device)."""

from distilts.cli import main

if __name__ == "__main__":
    main()
