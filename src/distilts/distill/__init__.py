"""The distill stage."""
