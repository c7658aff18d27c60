"""Fitting, calibration, artefacts and the errors of a channel model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from omni_journey.channels.artefacts import ModelRecord, load_model, save_model
from omni_journey.channels.design import FEATURE_VERSION
from omni_journey.channels.features import CHANNELS
from omni_journey.channels.model import ChannelModel, ChannelModelError, TrainingSet, fit_model
from tests.unit.channels.support import AS_OF, history

N = 6000


def _training_set(seed: int = 0) -> tuple[TrainingSet, np.ndarray]:
    """Half the customers love SMS (and their history shows it); everybody else
    prefers email. Clicks follow that; a third of clicks convert."""
    rng = np.random.default_rng(seed)
    lovers = rng.random(N) < 0.5
    counts = {}
    for i in range(N):
        counts[(i, "sms", "sent")] = 10
        counts[(i, "sms", "clicked")] = 4 if lovers[i] else 0
        counts[(i, "email", "sent")] = 10
        counts[(i, "email", "clicked")] = 1
    attributes = [{"tier": "gold" if i % 3 == 0 else "bronze"} for i in range(N)]
    hist = history(N, counts=counts, attributes=attributes)
    channel = rng.choice([CHANNELS.index("email"), CHANNELS.index("sms")], size=N)
    p = np.where(channel == CHANNELS.index("sms"), np.where(lovers, 0.25, 0.01), 0.06)
    clicked = rng.random(N) < p
    converted = clicked & (rng.random(N) < 0.3)
    data = TrainingSet(
        history=hist,
        messages=["cart_reminder"] * N,
        channel=channel.astype(np.int64),
        clicked=clicked,
        converted=converted,
        groups=hist.customer_ids,
    )
    return data, lovers


@pytest.fixture(scope="module")
def fitted() -> tuple[ChannelModel, np.ndarray, TrainingSet]:
    data, lovers = _training_set()
    return fit_model(data, version="cm-test", trained_at=AS_OF), lovers, data


def test_the_model_learns_who_prefers_which_channel(
    fitted: tuple[ChannelModel, np.ndarray, TrainingSet],
) -> None:
    model, lovers, data = fitted
    p = model.predict(data.history, data.messages)
    sms, email = CHANNELS.index("sms"), CHANNELS.index("email")
    prefers_sms = p[:, sms] > p[:, email]
    assert (prefers_sms == lovers).mean() > 0.95
    # calibrated: p(click) * p(order | click) averages to the observed conversion rate
    for channel in (sms, email):
        mask = data.channel == channel
        assert p[mask, channel].mean() == pytest.approx(data.converted[mask].mean(), rel=0.25)
    assert model.trained == (True, True, False, False)  # no push or WhatsApp sends logged
    assert np.isnan(p[:, CHANNELS.index("push")]).all()


def test_the_card_reports_out_of_fold_metrics(
    fitted: tuple[ChannelModel, np.ndarray, TrainingSet],
) -> None:
    card = fitted[0].card
    click = card["metrics"]["click"]
    assert click["auc"] > 0.7
    assert click["ece"] < 0.02
    assert card["feature_version"] == FEATURE_VERSION
    assert card["features"] == list(fitted[0].names)
    assert card["rows_per_channel"]["sms"] + card["rows_per_channel"]["email"] == N
    assert "attr_tier=gold" in card["features"]


def test_no_clicks_no_model() -> None:
    data, _ = _training_set()
    data.clicked = np.zeros(N, dtype=bool)
    with pytest.raises(ChannelModelError, match="no clicks"):
        fit_model(data, version="x", trained_at=AS_OF)


def _record(tmp_path: Path, model: ChannelModel) -> ModelRecord:
    path, digest = save_model(model, tmp_path)
    return ModelRecord(model.version, path, digest, FEATURE_VERSION, "active", AS_OF)


def test_save_and_load_give_the_same_predictions(
    tmp_path: Path, fitted: tuple[ChannelModel, np.ndarray, TrainingSet]
) -> None:
    model, _, data = fitted
    loaded = load_model(tmp_path, _record(tmp_path, model))
    np.testing.assert_allclose(
        loaded.predict(data.history, data.messages), model.predict(data.history, data.messages)
    )
    card = json.loads((tmp_path / model.version / "card.json").read_text())
    assert card["version"] == "cm-test"
    assert card["weights_sha256"]


def test_a_corrupt_weights_file_is_refused_with_a_clear_error(
    tmp_path: Path, fitted: tuple[ChannelModel, np.ndarray, TrainingSet]
) -> None:
    record = _record(tmp_path, fitted[0])
    weights = tmp_path / record.path / "weights.npz"
    weights.write_bytes(weights.read_bytes()[:-40] + b"\0" * 40)
    with pytest.raises(ChannelModelError, match=r"cm-test: .*corrupt or replaced"):
        load_model(tmp_path, record)


def test_a_missing_file_and_mismatched_features_are_refused(
    tmp_path: Path, fitted: tuple[ChannelModel, np.ndarray, TrainingSet]
) -> None:
    record = _record(tmp_path, fitted[0])
    old = ModelRecord(record.version, record.path, record.sha256, "channels-features-v0",
                      "active", AS_OF)  # fmt: skip
    with pytest.raises(ChannelModelError, match="retrain"):
        load_model(tmp_path, old)
    (tmp_path / record.path / "card.json").unlink()
    with pytest.raises(ChannelModelError, match="file missing"):
        load_model(tmp_path, record)


def test_weights_of_the_wrong_shape_are_refused(
    tmp_path: Path, fitted: tuple[ChannelModel, np.ndarray, TrainingSet]
) -> None:
    model = fitted[0]
    record = _record(tmp_path, model)
    card_path = tmp_path / record.path / "card.json"
    card = json.loads(card_path.read_text())
    card["features"] = card["features"][:-1]  # the code's design no longer matches
    card_path.write_text(json.dumps(card))
    with pytest.raises(ChannelModelError, match="features differ"):
        load_model(tmp_path, record)
    card["features"] = list(model.names)
    card_path.write_text(json.dumps(card))
    weights = tmp_path / record.path / "weights.npz"
    arrays = dict(np.load(weights))
    arrays["click_weights"] = arrays["click_weights"][:, :-1]
    with weights.open("wb") as handle:
        np.savez(handle, **arrays)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    resigned = ModelRecord(record.version, record.path, digest, FEATURE_VERSION, "active", AS_OF)
    with pytest.raises(ChannelModelError, match=r"click_weights.*shape"):
        load_model(tmp_path, resigned)
