"""The runtime: builder (spec -> LangGraph), executor (runs, traces, events), queues."""

from agentflow.runtime.builder import build_graph_from_json, compile_workflow
from agentflow.runtime.executor import (
    arun_workflow,
    astream_workflow,
    cancel_run,
    run_workflow,
    stream_workflow,
)

__all__ = [
    "arun_workflow",
    "astream_workflow",
    "build_graph_from_json",
    "cancel_run",
    "compile_workflow",
    "run_workflow",
    "stream_workflow",
]
