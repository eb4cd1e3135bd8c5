"""Choose and configure the backend resource from the environment."""

from __future__ import annotations

import os
from typing import Mapping

import dagster as dg

from video_assets.backends.self_hosted import DEFAULT_WORKFLOW_FILE, SelfHostedBackend


def backend_from_env(env: Mapping[str, str] | None = None) -> SelfHostedBackend:
    """The inline shipped workflow by default; a saved workflow when ROBOFLOW_WORKSPACE and _WORKFLOW are set."""
    env = os.environ if env is None else env
    workspace, workflow = env.get("ROBOFLOW_WORKSPACE"), env.get("ROBOFLOW_WORKFLOW")
    if workspace and workflow:
        return SelfHostedBackend(
            workspace=workspace,
            workflow_id=workflow,
            workflow_version_id=env.get("ROBOFLOW_WORKFLOW_VERSION") or None,
            api_key=dg.EnvVar("ROBOFLOW_API_KEY"),
        )
    return SelfHostedBackend(workflow_file=env.get("VIDEO_ASSETS_WORKFLOW") or DEFAULT_WORKFLOW_FILE)
