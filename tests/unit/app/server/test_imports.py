"""The web process (``python -m app.server``) loads no audio code and no worker code: it
stays small and starts fast.

It only *sends* a job's first stage, by the actor's name; the worker (``tasks.pipeline``) and
the audio stack behind it (PyAV, numpy, scipy) never load in it.
"""

from __future__ import annotations

from tests.support.fresh_python import last_json_line

HEAVY = ("av", "numpy", "scipy", "tasks", "tasks.pipeline", "tasks.stages", "audio.transcode")

PROBE = """
import io, json, sys
from app.http import create_app
from app.config import Config
from app.queue import PIPELINE_ACTOR, start_job
import app.server, app.server.front_door, app.server.serving
import app.cli

config = Config.from_env({"DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
                          "STORAGE_URL": "file://%(storage)s", "ADMIN_TOKEN": "probe"})
client = create_app(config).test_client()
answers = [client.get(path).status_code for path in ("/healthz", "/api/openapi.json")]
bad_format = client.post("/api/uploads", data={"formats": "mp3,xyz",
                         "file": (io.BytesIO(b"RIFF0000WAVEfmt "), "a.wav")},
                         headers={"Authorization": "Bearer probe"}).get_json()
print(json.dumps({"answers": answers, "bad_format": bad_format,
                  "loaded": sorted(m for m in %(heavy)r if m in sys.modules)}))
"""


def test_the_web_process_loads_neither_the_audio_stack_nor_the_worker(tmp_path):
    probe = PROBE % {"storage": tmp_path, "heavy": HEAVY}
    report = last_json_line(probe)
    assert isinstance(report, dict)
    assert report["answers"] == [200, 200]
    # The upload route checked the formats …
    assert report["bad_format"]["error"]["code"] == "unknown_format"
    # … and nothing heavy came with it.
    assert report["loaded"] == []


def test_the_probe_sees_a_heavy_import_when_there_is_one(tmp_path):
    """The check above can fail: the same probe, after importing the worker, reports it."""
    probe = PROBE % {"storage": tmp_path, "heavy": HEAVY}
    probe = probe.replace("import app.cli", "import app.cli\nimport numpy")
    report = last_json_line(probe)
    assert isinstance(report, dict) and report["loaded"] == ["numpy"]
