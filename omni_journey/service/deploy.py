"""Keep the journey triggers in ``prefect.yaml`` in step with ``journeys/``.

Each enabled journey with an event trigger gets one deployment trigger on the
``advance`` deployment: when Prefect sees ``omni.events.ingested`` for resource
``omni.event.<trigger event>`` (emitted once per ingested batch and event name, see
:mod:`omni_journey.ingest.announce`), it starts ``advance`` with
``{"journey": <key>, "send": true}``: the run sends the messages it queued that are due
now, so they need not wait for the next scheduled ``dispatch``. A journey entered on a
segment gets the same on ``omni.segment.entered`` / ``omni.segment.<segment>``.
Scheduled audiences need none: the every-minute ``advance`` schedule runs them.

The trigger's ``within`` (seconds) is a throttle: Prefect fires on the first event,
then ignores the journey's events for ``within`` seconds, so a burst coalesces into
one run; the scheduled pass picks up whatever arrived meanwhile. An operator may tune
``within`` per journey in ``prefect.yaml``: it is kept when the file is rewritten.

Triggers carrying a ``journey`` parameter are generated; any other trigger on the
deployment is left alone. This module reads and writes YAML only: it never imports
Prefect.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from omni_journey.errors import OmniJourneyError
from omni_journey.ingest.announce import (
    INGESTED_EVENT,
    SEGMENT_ENTERED_EVENT,
    resource_id,
    segment_resource_id,
)
from omni_journey.spec.models import EventTrigger, JourneySpec, SegmentTrigger

__all__ = [
    "ADVANCE_DEPLOYMENT",
    "DEFAULT_THROTTLE_SECONDS",
    "PrefectYamlError",
    "TriggerPlan",
    "journey_triggers",
    "plan_triggers",
    "write_triggers",
]

ADVANCE_DEPLOYMENT = "advance"
DEFAULT_THROTTLE_SECONDS = 10
_MANAGED_PARAMETER = "journey"


class PrefectYamlError(OmniJourneyError, ValueError):
    """``prefect.yaml`` cannot be read, or has no ``advance`` deployment."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


def journey_triggers(
    journeys: Mapping[str, JourneySpec],
    *,
    throttle: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """The generated triggers, in journey-key order. ``throttle`` overrides ``within``
    per journey key (default :data:`DEFAULT_THROTTLE_SECONDS`)."""
    throttle = throttle or {}
    triggers: list[dict[str, Any]] = []
    for key in sorted(journeys):
        spec = journeys[key]
        if not spec.enabled:
            continue
        if isinstance(spec.trigger, EventTrigger):
            event, resource = INGESTED_EVENT, resource_id(spec.trigger.event)
            because = f"{spec.trigger.event} events are ingested"
        elif isinstance(spec.trigger, SegmentTrigger):
            event, resource = SEGMENT_ENTERED_EVENT, segment_resource_id(spec.trigger.segment)
            because = f"customers enter segment {spec.trigger.segment}"
        else:  # a scheduled audience: the advance schedule runs it
            continue
        triggers.append(
            {
                "type": "event",
                "name": f"omni-journey: advance {key}",
                "description": f"Advance journey {key} when {because}.",
                "enabled": True,
                "match": {"prefect.resource.id": resource},
                "expect": [event],
                "posture": "Reactive",
                "threshold": 1,
                "within": int(throttle.get(key, DEFAULT_THROTTLE_SECONDS)),
                "parameters": {_MANAGED_PARAMETER: key, "send": True},
            }
        )
    return triggers


@dataclass(frozen=True)
class TriggerPlan:
    """How ``prefect.yaml``'s generated triggers compare with the journeys."""

    path: Path
    expected: list[dict[str, Any]]
    current: list[dict[str, Any]]
    missing: list[dict[str, Any]] = field(default_factory=list)  # to add (or replace)
    stale: list[dict[str, Any]] = field(default_factory=list)  # to remove (or replace)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.stale

    def describe(self) -> str:
        """What to change, as YAML to paste under the ``advance`` deployment."""
        if self.ok:
            return (
                f"{self.path}: the {ADVANCE_DEPLOYMENT} deployment's triggers match journeys/ "
                f"({len(self.expected)} generated)"
            )
        lines = [
            f"{self.path}: the {ADVANCE_DEPLOYMENT} deployment's triggers are out of step "
            "with journeys/."
        ]
        if self.missing:
            lines.append(
                f"add under deployments -> name: {ADVANCE_DEPLOYMENT} -> triggers "
                "(or run `omni-journey deploy` to write them):"
            )
            lines.append(_indent(_dump(self.missing), 2))
        if self.stale:
            lines.append("remove (no journey generates them any more):")
            lines.append(_indent(_dump(self.stale), 2))
        return "\n".join(lines)


def _null(representer: Any, _data: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never re-flow a hand-written line
    yaml.representer.add_representer(type(None), _null)
    return yaml


def _dump(triggers: Sequence[Mapping[str, Any]]) -> str:
    stream = io.StringIO()
    _yaml().dump([_commented(t) for t in triggers], stream)
    return stream.getvalue().rstrip("\n")


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line if line else line for line in text.splitlines())


def _plain(value: Any) -> Any:
    """ruamel's round-trip containers as plain dicts/lists/scalars (for comparing)."""
    return json.loads(json.dumps(value, default=str))


def _load(path: Path) -> tuple[Any, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PrefectYamlError(path, "not found (it holds the Prefect deployments)") from None
    try:
        document = _yaml().load(text)
    except YAMLError as error:
        raise PrefectYamlError(path, f"not valid YAML: {error}") from None
    deployments = document.get("deployments") if isinstance(document, Mapping) else None
    if not isinstance(deployments, list):
        raise PrefectYamlError(path, "has no `deployments:` list")
    for deployment in deployments:
        if isinstance(deployment, Mapping) and deployment.get("name") == ADVANCE_DEPLOYMENT:
            return document, deployment
    raise PrefectYamlError(
        path,
        f"has no deployment named {ADVANCE_DEPLOYMENT!r} "
        "(entrypoint flows/advance.py:advance) to attach journey triggers to",
    )


def _is_managed(trigger: Any) -> bool:
    parameters = trigger.get("parameters") if isinstance(trigger, Mapping) else None
    return isinstance(parameters, Mapping) and _MANAGED_PARAMETER in parameters


def _journey_of(trigger: Mapping[str, Any]) -> str:
    return str(trigger["parameters"][_MANAGED_PARAMETER])


def plan_triggers(path: Path, journeys: Mapping[str, JourneySpec]) -> TriggerPlan:
    """Compare ``path``'s generated triggers with the ones ``journeys`` need."""
    _, deployment = _load(path)
    found = [_plain(t) for t in (deployment.get("triggers") or []) if _is_managed(t)]
    throttle: dict[str, int] = {}
    for trigger in found:
        within = trigger.get("within")
        if isinstance(within, int) and not isinstance(within, bool) and within >= 0:
            throttle[_journey_of(trigger)] = within
    expected = journey_triggers(journeys, throttle=throttle)
    canonical = {json.dumps(t, sort_keys=True) for t in found}
    wanted = {json.dumps(t, sort_keys=True) for t in expected}
    return TriggerPlan(
        path=path,
        expected=expected,
        current=found,
        missing=[t for t in expected if json.dumps(t, sort_keys=True) not in canonical],
        stale=[t for t in found if json.dumps(t, sort_keys=True) not in wanted],
    )


def _commented(trigger: Mapping[str, Any]) -> CommentedMap:
    """A trigger as ruamel nodes; strings double-quoted, so a YAML 1.1 reader (Prefect
    uses PyYAML) never reads a journey called ``on`` or ``no`` as a boolean."""

    def convert(value: Any) -> Any:
        if isinstance(value, Mapping):
            node = CommentedMap()
            for k, v in value.items():
                node[k] = convert(v)
            return node
        if isinstance(value, list | tuple):
            seq = CommentedSeq()
            seq.extend(convert(v) for v in value)
            return seq
        if isinstance(value, str):
            return DoubleQuotedScalarString(value)
        return value

    node: CommentedMap = convert(trigger)
    return node


def write_triggers(plan: TriggerPlan) -> bool:
    """Rewrite the generated triggers of ``plan.path`` (comments and every other key are
    kept); returns False when nothing had to change."""
    if plan.ok:
        return False
    document, deployment = _load(plan.path)
    kept: Sequence[Any] = [t for t in (deployment.get("triggers") or []) if not _is_managed(t)]
    triggers = CommentedSeq()
    triggers.extend(kept)
    triggers.extend(_commented(t) for t in plan.expected)
    deployment["triggers"] = triggers
    stream = io.StringIO()
    _yaml().dump(document, stream)
    plan.path.write_text(stream.getvalue(), encoding="utf-8")
    return True
