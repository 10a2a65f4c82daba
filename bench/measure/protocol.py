"""The worker protocol: the job the runner sends and the events the worker answers, typed.

Runner to worker (the worker's stdin): one job, one JSON line (``WorkerJob``,
or ``ProbeJob`` for ``bench env``). For a ``WorkerJob`` the runner then keeps
stdin open and writes one empty line, the go-ahead, each time it has stored
a finished case: the worker waits for it before its next case, so the
runner's own work never runs beside a timed round. An end of file on stdin
means the runner is gone: the worker stops.

Worker to runner (the worker's stdout): one event per line, a JSON object
whose ``"event"`` names its kind. For a ``WorkerJob``::

    env | unavailable
    (case  heartbeat*  record*  heartbeat*  case_done)*   -- one group per case, in the job's order
    done

``heartbeat`` may come at any time: it says the worker is making progress,
and the runner's ``--timeout`` counts silence, not the length of a case.
``case_done`` names the case it ends; the runner checks every id against the
case it expects. A ``ProbeJob`` is answered by ``probe`` and ``done``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from bench.core.records import Record
from bench.core.settings import Settings


class ProtocolError(ValueError):
    """A line that is not a job or an event of this protocol, or an event out of order."""


# --- the job ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteCases:
    """One suite file and the cases (parameter dicts) of it that the worker measures."""

    path: str
    cases: tuple[Mapping[str, int], ...]


@dataclass(frozen=True)
class WorkerJob:
    """What one worker measures: one framework on one device, over these suites' cases.

    ``repeat`` numbers the process of ``--processes N`` (0: the first).
    ``parent_pid`` is the runner's pid: the worker stops when its parent is
    no longer that process (0: do not check).
    """

    framework: str
    device: str
    mode: str
    run_id: str
    machine: str
    settings: Settings
    suites: tuple[SuiteCases, ...] = ()
    repeat: int = 0
    parent_pid: int = 0

    def to_line(self) -> str:
        """The job as one JSON line, newline included."""
        d = asdict(self)
        d["suites"] = [{"path": s.path, "cases": [dict(c) for c in s.cases]} for s in self.suites]
        return json.dumps(d) + "\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WorkerJob:
        """The job from its JSON object; ProtocolError for a malformed one."""
        try:
            suites = tuple(
                SuiteCases(str(s["path"]), tuple({str(k): int(v) for k, v in c.items()} for c in s["cases"]))
                for s in d.get("suites", ())
            )
            return cls(
                framework=_text(d["framework"]), device=_text(d["device"]), mode=_text(d["mode"]),
                run_id=_text(d["run_id"]), machine=_text(d["machine"]),
                settings=Settings(**d["settings"]), suites=suites,
                repeat=_integer(d.get("repeat", 0)), parent_pid=_integer(d.get("parent_pid", 0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise ProtocolError(f"malformed job: {type(exc).__name__}: {exc}") from None


@dataclass(frozen=True)
class ProbeJob:
    """``bench env``: start ``framework`` with ``threads`` threads and say what it sees."""

    framework: str
    threads: int
    probe: bool = True

    def to_line(self) -> str:
        return json.dumps(asdict(self)) + "\n"


def decode_job(line: str) -> WorkerJob | ProbeJob:
    """The job the runner sent; ProtocolError when the line is not one."""
    d = _object(line)
    if d.get("probe"):
        try:
            return ProbeJob(framework=_text(d["framework"]), threads=_integer(d["threads"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"malformed probe job: {type(exc).__name__}: {exc}") from None
    return WorkerJob.from_dict(d)


# --- the events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Env:
    """The framework, device and settings in effect (stored in the results' metadata)."""

    KIND: ClassVar[str] = "env"
    framework: str
    version: str
    device: str
    device_name: str
    cpus: tuple[int, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    peak_flops_per_s: float = math.nan
    memory_method: str = ""

    def metadata(self) -> dict[str, Any]:
        """What the results file keeps of it: a plain JSON object."""
        d = asdict(self)
        d["cpus"] = list(self.cpus)
        d["settings"] = dict(self.settings)
        return d


@dataclass(frozen=True)
class Unavailable:
    """The device cannot be used by this framework here; the reason says why."""

    KIND: ClassVar[str] = "unavailable"
    reason: str


@dataclass(frozen=True)
class CaseStarted:
    """The worker starts measuring a case."""

    KIND: ClassVar[str] = "case"
    suite: str
    case: str


@dataclass(frozen=True)
class Heartbeat:
    """The worker made progress since its last event (a timed block, a stage of a case)."""

    KIND: ClassVar[str] = "heartbeat"


@dataclass(frozen=True)
class RecordRow:
    """One results row of the case in progress."""

    KIND: ClassVar[str] = "record"
    record: Record


@dataclass(frozen=True)
class CaseFinished:
    """Every row of this case has been sent."""

    KIND: ClassVar[str] = "case_done"
    suite: str
    case: str


@dataclass(frozen=True)
class Done:
    """The worker finished its job and exits."""

    KIND: ClassVar[str] = "done"


@dataclass(frozen=True)
class ProbeResult:
    """The answer to a ``ProbeJob``: version, usable devices, settings in effect."""

    KIND: ClassVar[str] = "probe"
    version: str
    devices: tuple[str, ...] = ()
    cpus: tuple[int, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)


Event = Env | Unavailable | CaseStarted | Heartbeat | RecordRow | CaseFinished | Done | ProbeResult
KINDS: dict[str, type] = {
    cls.KIND: cls
    for cls in (Env, Unavailable, CaseStarted, Heartbeat, RecordRow, CaseFinished, Done, ProbeResult)
}


def encode(event: Event) -> str:
    """One event as one JSON line, newline included (NaN kept, as the rows hold it)."""
    body: dict[str, Any] = {f.name: getattr(event, f.name) for f in fields(event)}
    for key, value in body.items():
        if isinstance(value, Record):
            body[key] = value.to_dict()
        elif isinstance(value, tuple):
            body[key] = list(value)
        elif isinstance(value, Mapping):
            body[key] = dict(value)
    return json.dumps({"event": event.KIND, **body}, allow_nan=True) + "\n"


def decode(line: str) -> Event:
    """The event on one line; ProtocolError when it is not one of this protocol's."""
    d = _object(line)
    kind = d.pop("event", None)
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown event {_show(kind)}")
    try:
        return _build(cls, d)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ProtocolError(f"malformed {kind} event: {type(exc).__name__}: {exc}") from None


def _build(cls: type, d: Mapping[str, Any]) -> Any:
    """``cls`` from its fields, each checked against its annotation; missing ones take their defaults."""
    names = {f.name: f for f in fields(cls)}
    unknown = set(d) - set(names)
    if unknown:
        raise TypeError(f"unknown fields {sorted(unknown)}")
    return cls(**{name: _convert(names[name].type, name, value) for name, value in d.items()})


def _convert(kind: Any, name: str, value: Any) -> Any:
    """``value`` as the annotation ``kind`` (a string: annotations are postponed) says."""
    if kind == "str":
        return _text(value)
    if kind == "float":
        return _number(value)
    if kind == "int":
        return _integer(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise TypeError(f"{name}: {_show(value)} is not true or false")
        return value
    if kind == "tuple[float, ...]":
        return tuple(_number(v) for v in _list(value))
    if kind == "tuple[int, ...]":
        return tuple(_integer(v) for v in _list(value))
    if kind == "tuple[str, ...]":
        return tuple(_text(v) for v in _list(value))
    if kind == "Record":
        if not isinstance(value, dict):
            raise TypeError(f"{name} is not an object")
        return _build(Record, value)
    if kind == "Mapping[str, Any]":
        if not isinstance(value, dict):
            raise TypeError(f"{name} is not an object")
        return value
    raise TypeError(f"{name}: this protocol does not carry {kind}")


def _object(line: str) -> dict[str, Any]:
    try:
        d = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"not JSON: {_show(line)} ({type(exc).__name__})") from None
    if not isinstance(d, dict):
        raise ProtocolError(f"not a JSON object: {_show(line)}")
    return d


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{_show(value)} is not a string")
    return value


def _integer(value: Any) -> int:
    # 3.0 is 3: JSON writers may spell a whole number either way.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{_show(value)} is not an integer")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{_show(value)} is not a number")
    return float(value)


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"{_show(value)} is not a list")
    return value


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
