"""Run ``clusterbus`` roles as real child processes (killable with SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from engine.settings import Settings


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a child process use ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLUSTERBUS_", "OTEL_"))}
    env.update(
        {
            "CLUSTERBUS_AMQP_URL": settings.amqp_url.get_secret_value(),
            "CLUSTERBUS_STORE_URL": settings.store_url,
            "CLUSTERBUS_SHARDS": str(settings.shards),
            "CLUSTERBUS_TOPOLOGY_PREFIX": settings.topology_prefix,
            "CLUSTERBUS_PREFETCH": str(settings.prefetch),
            "CLUSTERBUS_SECRET_KEY_FILE": str(settings.secret_key_file),
            "CLUSTERBUS_DELAY_LEVELS_MS": "[" + ",".join(map(str, settings.delay_levels_ms)) + "]",
            "CLUSTERBUS_DELIVERY_LIMIT": str(settings.delivery_limit),
            "CLUSTERBUS_MAX_MESSAGE_BYTES": str(settings.max_message_bytes),
            "CLUSTERBUS_QUEUE_TYPE": settings.queue_type.value,
            "CLUSTERBUS_SHARD_LEASES": str(settings.shard_leases).lower(),
            "CLUSTERBUS_LEASE_INTERVAL_S": str(settings.lease_interval_s),
        }
    )
    env.update(extra)
    return env


class ClusterbusProcess:
    """One ``python -m engine run --role ROLE`` child; its log goes to a file for post-mortems."""

    def __init__(self, settings: Settings, role: str, log_dir: Path, **env: str) -> None:
        self.settings = settings
        self.role = role
        self.log_path = log_dir / f"{role}-{os.getpid()}-{id(self)}.log"
        self.env = settings_env(settings, **env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ClusterbusProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "run", "--role", self.role],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, exactly like a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def exit_code(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def engine_process(settings: Settings, log_dir: Path, **env: str) -> ClusterbusProcess:
    """Start ``clusterbus run --role engine`` for ``settings``."""
    return ClusterbusProcess(settings, "engine", log_dir, **env).start()
