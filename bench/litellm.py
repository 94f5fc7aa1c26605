"""LiteLLM's proxy, installed into its own virtual environment and pointed at the same fake upstream.

Configured as its benchmark documents ask for a fair comparison: one worker, no database, no
callbacks, the bundled model cost map (``LITELLM_LOCAL_MODEL_COST_MAP=True``, no fetch at start-up),
and ``api_base`` set to the fake upstream so every call makes the same HTTP hop relaygate's do.
Two traps: it refuses weak master keys, and when its port is busy it moves to another one without
saying so, so readiness is checked on the port we gave it, against a page only LiteLLM serves.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import yaml

from bench.procs import Server, free_port, start_server

__all__ = ["LITELLM_VERSION", "ensure_litellm", "start_litellm"]

# 1.106 is the release the project's reference figures were taken with; 1.106.0 is the newest 1.106
# whose pins this machine's package registry can satisfy.
LITELLM_VERSION = "1.106.0"
VENV = Path(__file__).parent / ".litellm-venv"


def _binary() -> Path:
    return VENV / "bin" / "litellm"


def installed_version() -> str | None:
    python = VENV / "bin" / "python"
    if not python.exists():
        return None
    result = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_litellm(version: str = LITELLM_VERSION) -> str:
    """Install ``litellm[proxy]==version`` into bench/.litellm-venv unless it is there; return its version."""
    current = installed_version()
    if current == version and _binary().exists():
        return current
    print(f"installing LiteLLM {version} into {VENV} (once; takes a minute or two)", file=sys.stderr, flush=True)
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"litellm[proxy]=={version}"],
        check=True,
    )  # fmt: skip
    installed = installed_version()
    if installed is None:
        raise RuntimeError("LiteLLM did not install")
    return installed


def start_litellm(upstream: str, models: list[str], work: Path) -> tuple[Server, str]:
    """Start the proxy on a free port; return it and the master key clients must send."""
    master_key = "sk-" + secrets.token_urlsafe(32)
    config = {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {"model": f"openai/{model}", "api_base": upstream, "api_key": "sk-x"},
            }
            for model in models
        ],
        "litellm_settings": {
            "callbacks": [],
            "success_callback": [],
            "failure_callback": [],
            "telemetry": False,
            "drop_params": True,
        },
        "general_settings": {"master_key": master_key, "disable_spend_logs": True},
    }
    path = work / "litellm.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    command = [str(_binary()), "--config", str(path), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "DISABLE_SCHEMA_UPDATE": "True",
    }
    server = start_server(
        "litellm",
        command,
        port=port,
        ready_path="/health/liveliness",
        ready_text="alive",
        env=env,
        unset=["DATABASE_URL", "REDIS_URL", "REDIS_HOST"],
        timeout=180,
        cwd=str(work),
    )
    return server, master_key
