"""Serve the ``advance`` flow with the triggers ``omni-journey deploy`` generates for the
project in ``OMNI_PROJECT_DIR`` (run as a subprocess by the trigger test)::

    python -m tests.integration.prefect.serve_advance DEPLOYMENT_NAME
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from prefect import serve
from prefect.events import DeploymentTriggerTypes
from pydantic import TypeAdapter

from flows.advance import advance
from omni_journey.service.deploy import journey_triggers
from omni_journey.spec.project import load_project


def main(name: str) -> None:
    project = load_project(Path(os.environ["OMNI_PROJECT_DIR"])).require_valid()
    adapter: TypeAdapter[DeploymentTriggerTypes] = TypeAdapter(DeploymentTriggerTypes)
    triggers = [adapter.validate_python(t) for t in journey_triggers(project.journeys)]
    deployment = advance.to_deployment(name=name, triggers=triggers)  # type: ignore[arg-type]
    serve(deployment, pause_on_shutdown=False, print_starting_message=False)


if __name__ == "__main__":
    main(sys.argv[1])
