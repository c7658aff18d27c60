"""Customer profiles into the store: one durable transaction per batch.

A profile sets contact columns, push tokens, time zone, locale, consent per channel
(the latest statement wins) and attributes, and merges the customers it links (see
:mod:`omni_journey.identity`). A profile that changes nothing counts as a duplicate,
so importing a file again reports every line as a duplicate and writes nothing.

The profiles of a batch that merge nobody are applied set-based
(:mod:`omni_journey.identity.profile_batch`); the others walk the identity graph in
input order, as a merge depends on what the profiles before it linked. A profile that
would merge two customers known by their own ids without asking (``merge: true``) is
refused whole as an ``identity-conflict`` (:mod:`omni_journey.identity.conflicts`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from omni_journey.errors import IngestError
from omni_journey.identity import IdentityGraph
from omni_journey.identity.profile_batch import (
    apply_independent,
    batch_owners,
    split_independent,
)
from omni_journey.identity.statements import Profile
from omni_journey.ingest.event_rows import Reject
from omni_journey.ingest.profile_rows import parse_profiles
from omni_journey.ingest.results import BatchResult
from omni_journey.ingest.transactions import open_connection, write_transaction
from omni_journey.settings import Settings

__all__ = ["apply_profiles", "ingest_profiles", "store_profiles"]

log = logging.getLogger(__name__)


def ingest_profiles(
    engine: Engine, records: Sequence[Mapping[str, Any]], *, now: datetime, settings: Settings
) -> BatchResult:
    """Apply a batch of customer profiles (docs/data-formats.md: with ``anonymous_id`` /
    ``external_id``, and an optional ``at`` for when the statement was made, default
    ``now``)."""
    with open_connection(engine) as connection:
        return apply_profiles(connection, records, now, settings)


def apply_profiles(
    connection: Connection,
    records: Sequence[Mapping[str, Any]],
    now: datetime,
    settings: Settings,
) -> BatchResult:
    """:func:`ingest_profiles` on an open connection, in one transaction of its own."""
    profiles, rejected = parse_profiles(records, settings.default_region, now)
    if not profiles:
        return BatchResult(0, 0, rejected)
    accepted, conflicts = store_profiles(connection, profiles, now)
    if conflicts:  # profile positions -> record positions
        refused = {reject.index for reject in rejected}
        positions = [i for i in range(len(records)) if i not in refused]
        rejected += [Reject(positions[c.index], c.reason, c.detail) for c in conflicts]
        rejected.sort(key=lambda reject: reject.index)
    return BatchResult(accepted, len(profiles) - accepted - len(conflicts), rejected)


def store_profiles(
    connection: Connection, profiles: Sequence[Profile], now: datetime
) -> tuple[int, list[Reject]]:
    """Checked profiles applied in one transaction of their own: how many changed the
    store (the others are duplicates, or refused), and the profiles refused as identity
    conflicts (indexed by their position in ``profiles``; nothing of them stored)."""
    with write_transaction(connection, exclusive=True):
        owners = batch_owners(connection, profiles)
        independent, linked = split_independent(profiles, owners)
        accepted = apply_independent(connection, independent, owners, now)
        conflicts: list[Reject] = []
        if linked:
            positions = {id(profile): index for index, profile in enumerate(profiles)}
            changed, refused = _apply_through_graph(connection, linked, now)
            accepted += changed
            conflicts = [
                Reject(positions[id(profile)], error.reason, error.detail)
                for profile, error in refused
            ]
    return accepted, sorted(conflicts, key=lambda reject: reject.index)


def _apply_through_graph(
    connection: Connection, profiles: Sequence[Profile], now: datetime
) -> tuple[int, list[tuple[Profile, IngestError]]]:
    """Profiles that merge customers, move push tokens or share a customer with another
    profile of the batch, one by one in input order: how many changed the store, and
    the ones refused (a merge of two known customers nobody asked for)."""
    accepted = 0
    refused: list[tuple[Profile, IngestError]] = []
    graph = IdentityGraph.load(
        connection,
        keys=[k for p in profiles for k in (*p.linking, *p.push)],
        customer_ids=[c for p in profiles for c in (p.customer_id, *p.seeds) if c],
        now=now,
    )
    for profile in profiles:
        try:
            customer, changed = graph.link(
                profile.customer_id, profile.linking, profile.push, merge=profile.merge
            )
        except IngestError as error:  # raised before the graph changed
            refused.append((profile, error))
            continue
        for column, value in profile.columns.items():
            changed |= customer.set_column(column, value)
        changed |= customer.update_attributes(profile.attributes)
        for channel, granted in profile.consent.items():
            changed |= customer.state_consent(channel, granted, profile.at, "profile")
        accepted += changed
    graph.save(connection)
    if graph.merges or graph.moves:
        log.info("profiles merged %d customers, moved %d push tokens", graph.merges, graph.moves)
    if refused:
        log.warning("%d profiles would merge two known customers and were refused", len(refused))
    return accepted, refused
