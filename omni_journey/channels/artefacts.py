"""Model artefacts: files under ``<OMNI_HOME>/models/<version>/`` and their registry.

Each version is two files: ``weights.npz`` (numpy arrays only, read with
``allow_pickle=False``: loading a model never runs code) and ``card.json`` (what the
model is: features, feature spec, metrics, data window, when trained). The
``channel_models`` table registers each version with the digest of its weights file;
the newest ``active`` row is the model in use.

:class:`ModelLoader` loads the active model lazily, at most once per version, and
never raises: a missing, corrupt or mismatched model is logged once, as an error
naming the version, the file and the problem, and what to do (train a new one), and the
caller falls back to the rule.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table, select, update

from omni_journey.spec.conditions import CHANNELS
from omni_journey.store.tables import ChannelModelArtefact

if TYPE_CHECKING:
    from omni_journey.channels.model import ChannelModel

# numpy and the model's modules load only to save or read a model: a pass with no model
# trained yet asks the registry (one query) and decides by the rule without them.

__all__ = [
    "CHANNEL_MODELS",
    "ModelLoader",
    "ModelRecord",
    "active_record",
    "load_model",
    "register_model",
    "save_model",
]

log = logging.getLogger("omni_journey.channels")

CHANNEL_MODELS = cast(Table, ChannelModelArtefact.__table__)  # type: ignore[attr-defined]
_WEIGHTS = "weights.npz"
_CARD = "card.json"


@dataclass(frozen=True)
class ModelRecord:
    """One registry row."""

    version: str
    path: str
    sha256: str
    feature_version: str
    status: str
    trained_at: datetime


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_model(model: ChannelModel, models_dir: Path) -> tuple[str, str]:
    """Write the model's files; return (path relative to ``models_dir``, digest)."""
    import numpy as np

    folder = models_dir / model.version
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / _WEIGHTS
    arrays: dict[str, Any] = {
        "trained": np.array(model.trained, dtype=bool),
        "population_hours": model.population_hours,
    }
    for name, head in model.heads.items():
        arrays.update(head.arrays(name))
    with weights.open("wb") as handle:
        np.savez(handle, **arrays)
    digest = _digest(weights)
    card = {
        **model.card,
        "version": model.version,
        "features": list(model.names),
        "channels": list(CHANNELS),
        "feature_version": model.spec.version,
        "spec": model.spec.as_json(),
        "weights_sha256": digest,
    }
    (folder / _CARD).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return model.version, digest


def register_model(
    connection: Connection,
    model: ChannelModel,
    path: str,
    digest: str,
    *,
    activate: bool = True,
) -> None:
    """Record a saved model; with ``activate`` it becomes the one in use."""
    from omni_journey.channels.model import MODEL_KIND

    if activate:
        connection.execute(
            update(CHANNEL_MODELS)
            .where(CHANNEL_MODELS.c.status == "active")
            .values(status="retired")
        )
    data = model.card.get("data", {})
    connection.execute(
        CHANNEL_MODELS.insert(),
        {
            "version": model.version,
            "kind": MODEL_KIND,
            "feature_version": model.spec.version,
            "path": path,
            "sha256": digest,
            "status": "active" if activate else "retired",
            "trained_at": datetime.fromisoformat(model.card["trained_at"]),
            "data_from": datetime.fromisoformat(data["from"]) if data.get("from") else None,
            "data_until": datetime.fromisoformat(data["until"]) if data.get("until") else None,
            "metrics": model.card.get("metrics", {}),
        },
    )


def active_record(connection: Connection) -> ModelRecord | None:
    row = connection.execute(
        select(CHANNEL_MODELS)
        .where(CHANNEL_MODELS.c.status == "active")
        .order_by(CHANNEL_MODELS.c.trained_at.desc(), CHANNEL_MODELS.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return ModelRecord(
        version=row.version,
        path=row.path,
        sha256=row.sha256,
        feature_version=row.feature_version,
        status=row.status,
        trained_at=row.trained_at,
    )


def load_model(models_dir: Path, record: ModelRecord) -> ChannelModel:
    """Read and check one registered model; :class:`ChannelModelError` says what is wrong."""
    import numpy as np

    from omni_journey.channels.design import FEATURE_VERSION, FeatureSpec, feature_names
    from omni_journey.channels.model import HEADS, ChannelModel, ChannelModelError, Head

    version = record.version
    if record.feature_version != FEATURE_VERSION:
        raise ChannelModelError(
            version,
            f"trained on features {record.feature_version!r}, this code builds "
            f"{FEATURE_VERSION!r}: retrain (omni-journey train)",
        )
    folder = models_dir / record.path
    weights, card_path = folder / _WEIGHTS, folder / _CARD
    for needed in (weights, card_path):
        if not needed.is_file():
            raise ChannelModelError(version, f"file missing: {needed}")
    try:
        digest = _digest(weights)
    except OSError as error:
        raise ChannelModelError(version, f"{weights} unreadable: {error.strerror}") from None
    if digest != record.sha256:
        raise ChannelModelError(
            version, f"{weights} does not match its registered digest (corrupt or replaced)"
        )
    reading = card_path
    try:
        card: dict[str, Any] = json.loads(card_path.read_text())
        spec = FeatureSpec.from_json(card["spec"])
        reading = weights
        with np.load(weights, allow_pickle=False) as arrays:
            parts = {name: np.asarray(arrays[name]) for name in arrays.files}
        reading = card_path
        names = tuple(card["features"])
        channels = tuple(card["channels"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ChannelModelError(
            version, f"{reading} unreadable ({type(error).__name__}: {error})"
        ) from None
    if channels != CHANNELS:
        raise ChannelModelError(version, f"trained for channels {channels}, expected {CHANNELS}")
    if list(names) != feature_names(spec):
        raise ChannelModelError(
            version, "its features differ from the ones this code builds: retrain it"
        )
    d, k = len(names), len(CHANNELS)
    shapes: dict[str, tuple[int, ...]] = {"trained": (k,), "population_hours": (24,)}
    for head in HEADS:
        columns = parts.get(f"{head}_columns")
        m = len(columns) if columns is not None and columns.ndim == 1 else -1
        if columns is None or m < 0 or (m and (columns.min() < 0 or columns.max() >= d)):
            raise ChannelModelError(version, f"array {head}_columns is missing or out of range")
        shapes.update(
            {
                f"{head}_mean": (m,),
                f"{head}_scale": (m,),
                f"{head}_weights": (k, m),
                f"{head}_bias": (k,),
                f"{head}_calibration": (2,),
            }
        )
    for name, shape in shapes.items():
        if name not in parts or parts[name].shape != shape:
            found = parts[name].shape if name in parts else "nothing"
            raise ChannelModelError(version, f"array {name!r} has shape {found}, expected {shape}")
    heads = {
        head: Head(
            columns=parts[f"{head}_columns"].astype(np.int64),
            mean=parts[f"{head}_mean"].astype(float),
            scale=parts[f"{head}_scale"].astype(float),
            weights=parts[f"{head}_weights"].astype(float),
            bias=parts[f"{head}_bias"].astype(float),
            calibration=parts[f"{head}_calibration"].astype(float),
        )
        for head in HEADS
    }
    return ChannelModel(
        version=version,
        spec=spec,
        names=names,
        heads=heads,
        trained=tuple(bool(x) for x in parts["trained"]),
        population_hours=parts["population_hours"].astype(float),
        card=card,
    )


class ModelLoader:
    """The active model, loaded lazily and cached by version; errors are logged once."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        self._version: str | None = None
        self._model: ChannelModel | None = None
        self.error: str | None = None

    def get(self, connection: Connection) -> ChannelModel | None:
        record = active_record(connection)
        if record is None:
            self._version, self._model, self.error = None, None, None
            return None
        if record.version == self._version:
            return self._model
        self._version = record.version
        from omni_journey.channels.model import ChannelModelError

        try:
            self._model, self.error = load_model(self.models_dir, record), None
        except ChannelModelError as error:
            self._model, self.error = None, str(error)
            log.error(
                "%s; using the rule until a good model is trained (omni-journey train)", error
            )
        return self._model
