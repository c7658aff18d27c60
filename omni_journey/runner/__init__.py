"""The runner: one pass over the journeys.

Cursors and claims, facts loaded in bulk once per batch, the pure engine called, its
effects turned into rows by a pure function, and everything written back in one
transaction per batch. See README.md in this folder.
"""
