"""The compile stage."""
