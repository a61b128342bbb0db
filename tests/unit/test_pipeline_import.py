"""Enqueueing a job loads no audio code: the web process stays small and its first upload fast."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_pipeline_module_does_not_load_the_stages_until_a_worker_boots():
    probe = (
        "import sys\n"
        "from tasks import pipeline\n"
        "assert pipeline.start and pipeline.run_stage\n"
        "heavy = ('tasks.stages', 'audio.features', 'scipy')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "pipeline._LoadStages().after_process_boot(pipeline.broker)\n"
        "print('tasks.stages' in sys.modules, callable(pipeline.STAGES[0].run))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "True True"]
