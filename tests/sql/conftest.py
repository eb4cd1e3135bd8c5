"""SQL models built on a real instance into a real DuckDB warehouse."""

from typing import Callable

import dagster as dg
import pytest


@pytest.fixture
def build_sql(instance) -> Callable[..., dg.ExecuteInProcessResult]:
    """Materialize the named models of `defs` (every model when none is named) in one run; failures are returned."""

    def build(defs: dg.Definitions, *names: str) -> dg.ExecuteInProcessResult:
        selection = dg.AssetSelection.assets(*names) if names else dg.AssetSelection.groups("sql")
        return dg.materialize(
            list(defs.assets), selection=selection, instance=instance, resources=defs.resources, raise_on_error=False
        )

    return build
