"""The `backend` resource: the kind and fields chosen by the environment, one implementation per kind."""

import pytest

from video_assets.backends.base import BackendError
from video_assets.backends.batch.backend import BatchBackend
from video_assets.backends.hosted.backend import HostedBackend
from video_assets.backends.registry import KINDS
from video_assets.backends.resource import Backend
from video_assets.backends.self_hosted import DEFAULT_WORKFLOW_FILE, SelfHostedBackend
from video_assets.backends.server import ServerBackend
from video_assets.predictions.defs import backend_config
from video_assets.settings import Settings


def backend_from(env: dict[str, str]) -> Backend:
    """The resource as the code location binds it from this environment (before any run config)."""
    return Backend(**backend_config(Settings.from_env(env)))


def test_backend_is_chosen_by_environment() -> None:
    def self_hosted(env):
        implementation = backend_from(env).implementation()
        assert isinstance(implementation, SelfHostedBackend)
        return implementation

    assert self_hosted({}).workflow_file == DEFAULT_WORKFLOW_FILE
    assert self_hosted({"VIDEO_ASSETS_WORKFLOW": "/w.json"}).workflow_file == "/w.json"
    saved = self_hosted({"ROBOFLOW_WORKSPACE": "acme", "ROBOFLOW_WORKFLOW": "people"})
    assert saved.uses_saved_workflow and saved.workflow_id == "people"


def test_every_registered_kind_builds_its_own_implementation(tmp_path) -> None:
    assert KINDS == ("self_hosted", "hosted", "server", "batch")
    fields = {"model": "people/1", "server_url": "http://gpu:9001", "workspace": "acme", "workflow_id": "people"}
    built = {kind: Backend(kind=kind, state_dir=str(tmp_path), **fields).implementation() for kind in KINDS}
    assert isinstance(built["self_hosted"], SelfHostedBackend)
    assert isinstance(built["hosted"], HostedBackend) and built["hosted"].identity().workflow_version == "model:people/1"
    assert isinstance(built["server"], ServerBackend) and built["server"].url == "http://gpu:9001"
    assert isinstance(built["batch"], BatchBackend) and built["batch"].identity().workflow_version == "acme/people@latest"
    with pytest.raises(BackendError, match="Backend kind 'cloud' is not one of self_hosted, hosted, server") as raised:
        Backend(kind="cloud", state_dir=str(tmp_path)).implementation()
    assert raised.value.permanent
