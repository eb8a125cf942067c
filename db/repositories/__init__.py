"""Queries, one module per area. Nothing here commits: the caller owns the transaction."""
