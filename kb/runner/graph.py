"""The batch graph: select -> one ``Send`` per PART to the runner subgraph -> review gate.

The runner subgraph is context -> research -> write -> check (a failed check goes
back to write with its reasons, at most ``max_rewrites`` times) -> drop -> tick;
any failure skips to drop, which writes a failed drop and ends the task. The node
that ends a task emits its summary row. This module only wires; the nodes are in
kb.runner.nodes and the work in kb.runner.stages.

Each runner node names its successor itself (a LangGraph ``Command``, see
``nodes.next_stage``) rather than through conditional edges: a conditional edge makes
LangGraph build a fresh view of the task's state for its router at every step, which
cost more than the routing (bench/bench_orchestration.py). The possible successors are
declared here, as each node's destinations.

Checkpoints are per PART, not per stage: the batch graph saves each finished task's
output as it lands, and the runner subgraph runs without a checkpointer of its own.
A kill therefore costs at most the PARTs in flight, which start again from their
first stage (every file they write is replaced whole, and the drop keeps its name);
checkpointing each of the six stages as well cost more than the rest of kb's
orchestration together (bench/bench_orchestration.py).
"""

from __future__ import annotations

import functools

from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy, Send

from kb.runner import nodes
from kb.runner.state import BatchState, PartOutput, PartState, RunContext


def build_runner_graph(retry: RetryPolicy = nodes.RETRY) -> StateGraph:
    """One runner task (one PART), as a subgraph; its only output is its ``results`` row.

    Research and write reach search providers and models, so they carry ``retry``.
    """
    g = StateGraph(PartState, context_schema=RunContext, output_schema=PartOutput)
    for stage, fn in (("context", nodes.context_stage), ("research", nodes.research_stage),
                      ("write", nodes.write_stage), ("check", nodes.check_stage),
                      ("drop", nodes.drop_stage), ("tick", nodes.tick_stage)):
        retried = retry if stage in ("research", "write") else None
        g.add_node(stage, nodes.runner_node(stage, fn, retry=retried), retry_policy=retried,
                   destinations=nodes.DESTINATIONS[stage])
    g.add_edge(START, "context")
    return g


# A coroutine: LangGraph runs a plain-function router in a worker thread.
async def fan_out(state: BatchState) -> list[Send] | str:
    """One ``Send`` per selected PART: each is its own task, so a resume reruns only unfinished ones."""
    if not state.get("selected"):
        return "review"
    return [
        Send("runner", {"task": {
            "plan_path": state["plan"],
            "plan_title": state.get("plan_title"),
            "plan_topic": state.get("topic"),
            "part": item["part"],
            "was": item["was"],
            "drop_slug": item.get("drop_slug"),
            "stamp": item.get("stamp"),
        }})
        for item in state["selected"]
    ]


@functools.cache
def compiled_runner(retry: RetryPolicy) -> object:
    """The runner subgraph, compiled once per process: it holds no run state (no checkpointer),
    and compiling it costs about as much as the rest of a run's start."""
    return build_runner_graph(retry).compile(checkpointer=False)


@functools.cache
def _compiled_batch(retry: RetryPolicy) -> object:
    runner = compiled_runner(retry)
    g = StateGraph(BatchState, context_schema=RunContext)
    g.add_node("select", nodes.select_node)
    g.add_node("runner", runner)
    g.add_node("review", nodes.review_node)
    g.add_edge(START, "select")
    g.add_conditional_edges("select", fan_out, ["runner", "review"])
    g.add_edge("runner", "review")
    g.add_edge("review", END)
    return g.compile()


def build_batch_graph(checkpointer=None, *, retry: RetryPolicy = nodes.RETRY):
    """The compiled graph for one batch run; only the batch level is checkpointed.

    Compiled once per process and copied with each run's checkpointer (a copy is a hundredth
    of a compile)."""
    return _compiled_batch(retry).copy({"checkpointer": checkpointer})


def recursion_limit(max_rewrites: int) -> int:
    """Enough steps for every rewrite a PART may take (LangGraph's default of 25 is not)."""
    return 25 + 2 * max_rewrites
