"""Segments: conditions on profiles and behaviour, answered for batches of customers."""
