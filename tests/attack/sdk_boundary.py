"""The Task SDK's supervisor, faked where callbacks meet it: the requests for Airflow Variables.

In a task runner and in the dag-processor, ``airflow.sdk.Variable`` sends ``GetVariable``,
``PutVariable`` and ``DeleteVariable`` through ``task_runner.SUPERVISOR_COMMS`` to the process that
talks to the API server. ``FileVariables`` answers them from a JSON file, so that several processes
(a task runner, then a dag-processor) share one set of Variables, as they share the metadata
database. ``down=True`` answers every request with an error, like an API server that is away.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow.sdk.exceptions import ErrorType
from airflow.sdk.execution_time.comms import (
    DeleteVariable,
    ErrorResponse,
    GetVariable,
    OKResponse,
    PutVariable,
    VariableResult,
)


class FileVariables:
    def __init__(self, path: Path, *, down: bool = False):
        self.path = path
        self.down = down
        self.requests: list[str] = []

    @property
    def variables(self) -> dict[str, str]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def send(self, msg: Any) -> Any:
        self.requests.append(type(msg).__name__)
        if self.down:
            raise ConnectionError("the API server did not answer")
        variables = self.variables
        if isinstance(msg, GetVariable):
            if msg.key not in variables:
                return ErrorResponse(error=ErrorType.VARIABLE_NOT_FOUND)
            return VariableResult(key=msg.key, value=variables[msg.key])
        if isinstance(msg, PutVariable):
            variables[msg.key] = msg.value
        elif isinstance(msg, DeleteVariable):
            variables.pop(msg.key, None)
        else:
            raise AssertionError(f"a callback asked the supervisor for {type(msg).__name__}")
        self.path.write_text(json.dumps(variables))
        return OKResponse(ok=True)


def install(monkeypatch: Any, comms: FileVariables) -> FileVariables:
    """Make ``comms`` this process's supervisor channel (as the task runner and dag-processor do)."""
    from airflow.sdk.execution_time import task_runner

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    return comms
