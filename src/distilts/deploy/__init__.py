"""Shipping an artifact: a versioned model store with atomic switch and rollback (`distilts deploy`), and an
offline install bundle for a device (`distilts bundle`). Standard library + the runtime: never torch."""
