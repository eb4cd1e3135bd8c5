"""The inference server's own HTTP app with the stream API, started the way its CPU Docker image starts it.

`uvicorn servers.inference_server_app:app` with ENABLE_STREAM_API=True: a stream-manager process
(the one that runs InferencePipelines and serves `/inference_pipelines/*` through the HTTP API),
then inference's `HttpInterface`. Only a model manager without caches or pingback is left out.
"""

from multiprocessing import Process

from inference.core.interfaces.http.http_api import HttpInterface
from inference.core.interfaces.stream_manager.manager_app.bootstrap import run_stream_manager
from inference.core.interfaces.streams_configuration import LEGACY_PIPELINE_HOST_DESCRIPTOR, server_streams_configuration
from inference.core.managers.base import ModelManager
from inference.core.registries.roboflow import RoboflowModelRegistry
from inference.models.utils import ROBOFLOW_MODEL_TYPES

stream_manager = Process(
    target=run_stream_manager,
    kwargs={"configuration": server_streams_configuration(), "host_descriptor": LEGACY_PIPELINE_HOST_DESCRIPTOR},
    daemon=False,
)
stream_manager.start()
app = HttpInterface(ModelManager(model_registry=RoboflowModelRegistry(ROBOFLOW_MODEL_TYPES))).app
