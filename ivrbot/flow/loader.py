"""Finding and loading flow modules from a folder, with errors that say what to fix."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from ivrbot.flow.check import errors
from ivrbot.flow.flow import Flow, FlowError


def load_flow_file(path: Path, check_model: bool = True) -> Flow:
    """Import one flow module and return its ``flow``, refusing a flow with errors.

    ``check_model``: a flow that listens for speech must find the speech model it names
    (``Flow(language=...)`` / ``Flow(model=...)``) now, not at its first call."""
    flow = import_flow_file(path)
    problems = errors(flow)
    if problems:
        raise FlowError(f"{path}: flow {flow.name!r}: " + "; ".join(map(str, problems)))
    if check_model and flow.needs_speech():
        from ivrbot.speech.models import flow_model_problem  # imports vosk: only when needed

        problem = flow_model_problem(flow)
        if problem:
            raise FlowError(f"{path}: {problem}")
    return flow


def import_flow_file(path: Path) -> Flow:
    """Import one flow module and return its ``flow`` (a :class:`Flow`), unchecked."""
    module_name = f"ivrbot_flows.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise FlowError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    # in sys.modules while it runs: a class it defines (a step type of its own, a dataclass)
    # looks its module up there
    previous = sys.modules.get(module_name)
    sys.modules[module_name] = module
    try:
        try:
            spec.loader.exec_module(module)
        except BaseException:
            if previous is not None:
                sys.modules[module_name] = previous
            else:
                del sys.modules[module_name]
            raise
    except FlowError as exc:
        raise FlowError(f"{path}: {exc}") from None
    except SyntaxError as exc:
        raise FlowError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        raise FlowError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from None
    flows = [v for v in vars(module).values() if isinstance(v, Flow)]
    if not flows:
        raise FlowError(f"{path}: defines no Flow (write 'flow = Flow(...)' at module level)")
    if len(flows) > 1:
        raise FlowError(f"{path}: defines {len(flows)} flows; keep one flow per module")
    flow = flows[0]
    flow.source = str(path)
    return flow


def flow_files(folder: Path) -> list[Path]:
    """The flow modules in a folder (files starting with '_' are not flows)."""
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))


def load_flows(folder: Path, check_model: bool = True) -> list[Flow]:
    """Every flow in ``folder`` (files starting with '_' are skipped); the first flow that
    does not load raises its FlowError."""
    flows, problems = load_flows_apart(folder, check_model)
    if problems:
        raise problems[0][1]
    return flows


def load_flows_apart(
    folder: Path, check_model: bool = True
) -> tuple[list[Flow], list[tuple[Path, FlowError]]]:
    """Every flow in ``folder`` that loads, and the problem of each file that does not: one
    bad file does not keep the others from being served. A flow that wants a number another
    flow (loaded before it) answers is a problem of its own file."""
    if not folder.is_dir():
        raise FlowError(f"{folder}: no such folder of flows")
    files = flow_files(folder)
    if not files:
        raise FlowError(f"{folder}: no flow modules (*.py) in it")
    flows: list[Flow] = []
    problems: list[tuple[Path, FlowError]] = []
    for path in files:
        try:
            flow = load_flow_file(path, check_model)
            check_numbers_free(flow, flows)
        except FlowError as exc:
            problems.append((path, exc))
        else:
            flows.append(flow)
    return flows, problems


def check_numbers_free(flow: Flow, others: list[Flow]) -> None:
    """FlowError if ``flow`` wants a number one of ``others`` answers."""
    for other in others:
        for number in flow.numbers:
            if number in other.numbers and other.source != flow.source:
                raise FlowError(
                    f"{flow.source}: number {number} is already answered by flow {other.name!r} "
                    f"({other.source})"
                )
