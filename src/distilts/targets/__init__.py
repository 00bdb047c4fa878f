"""The targets stage."""
