"""Every job kind runs an engine command, and the API names its parameters as the CLI does.

The REST API's ``/jobs/kinds/`` list and ``python -m analysis_engine CMD --help`` are both
derived from the engine function; this keeps them from drifting apart (issue 17).
"""

from __future__ import annotations

import pytest
from jobs import engine_registry as registry

from analysis_engine.commands import command_for_function


def _api_parameters(kind_name: str) -> list[str]:
    (listed,) = [k for k in registry.submittable_kinds() if k["kind"] == kind_name]
    parameters = listed["parameters"]
    if isinstance(parameters, dict):
        return list(parameters)
    return [p["name"] for p in parameters]


@pytest.mark.parametrize("kind", sorted(registry.JOB_KINDS))
def test_job_kind_parameters_are_the_cli_options(kind):
    function = registry.engine_function(registry.get_kind(kind))
    command = command_for_function(function)
    assert command is not None, f"job kind {kind} runs {function.__name__}, which no command runs"
    api = _api_parameters(kind)
    # Options naming server files (``*_path``) are CLI-only: through the API, data is named by
    # dataset or result references that the platform resolves (never a user-supplied path).
    cli_specs = [spec for spec in command.parameters if not spec.name.endswith("_path")]
    assert api == [spec.name for spec in cli_specs]
    # the CLI flag is the API name with dashes
    assert [spec.flags[0] for spec in cli_specs] == ["--" + name.replace("_", "-") for name in api]
