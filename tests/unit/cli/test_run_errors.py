"""`clusterbus run` without a broker: a clear error and exit code 2, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_run_without_rabbitmq_says_how_to_start_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLUSTERBUS_")}
    env["CLUSTERBUS_AMQP_URL"] = "amqp://guest:guest@127.0.0.1:1/"  # nothing listens on port 1
    env["CLUSTERBUS_STORE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "engine", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "rabbitmq-server -detached" in done.stderr
    assert "Traceback" not in done.stderr
