"""Regenerate the initial Alembic revision from the models (before the first release only).

.venv/bin/python scripts/regen_migration.py
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from alembic import command

from omni_journey.store.db import alembic_config, create_store_engine

VERSIONS = Path(__file__).resolve().parent.parent / "omni_journey/store/migrations/versions"


def main() -> None:
    target = VERSIONS / "0001_initial_schema.py"
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_store_engine(f"sqlite:///{tmp}/gen.db")
        command.revision(
            alembic_config(engine), message="initial schema", autogenerate=True, rev_id="0001"
        )
    text = target.read_text()
    text = text.replace("astext_type=Text()", "astext_type=sa.Text()")
    text = re.sub(r"^Create Date: .*$", "Create Date: 2026-11-23", text, flags=re.M)
    target.write_text(text)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
