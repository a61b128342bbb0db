"""Where things are."""

from __future__ import annotations

import sys
from pathlib import Path

#: The project's root: where the Procfile, alembic.ini and deploy/ are.
ROOT = Path(__file__).resolve().parents[2]
#: The virtualenv's scripts (``phantomchain``, ``dramatiq``, ``alembic``).
BIN = Path(sys.executable).parent
