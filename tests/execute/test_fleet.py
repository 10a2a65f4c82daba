"""bench.execute.fleet: choosing machines, reading progress, settling each machine's outcome."""

from __future__ import annotations

import json

import pytest

from bench.core.errors import UserError
from bench.execute import fleet


class FakeClient:
    def __init__(self, workers: dict[str, dict]) -> None:
        self.workers = workers

    def scheduler_info(self) -> dict:
        return {"workers": self.workers}


def worker(name: str, bench: int = 1) -> dict:
    return {"name": name, "resources": {"bench": bench} if bench else {}}


def test_machines_are_the_workers_that_offer_the_bench_resource_by_name():
    client = FakeClient({"tcp://a:1": worker("lab-1"), "tcp://b:1": worker("lab-2"),
                         "tcp://c:1": worker("helper", bench=0)})
    assert [m.name for m in fleet.machines(client)] == ["lab-1", "lab-2"]
    assert [m.address for m in fleet.machines(client, ["lab-2"])] == ["tcp://b:1"]
    assert [m.name for m in fleet.machines(client, ["lab-2", "lab-2", "lab-1"])] == ["lab-2", "lab-1"]


def test_unknown_duplicate_or_missing_machines_are_user_errors():
    client = FakeClient({"tcp://a:1": worker("laptop"), "tcp://b:1": worker("server")})
    with pytest.raises(UserError, match="did you mean 'server'"):
        fleet.machines(client, ["servr"])
    with pytest.raises(UserError, match="two Dask workers call themselves 'x'"):
        fleet.machines(FakeClient({"tcp://a:1": worker("x"), "tcp://b:1": worker("x")}))
    with pytest.raises(UserError, match="--resources bench=1"):
        fleet.machines(FakeClient({"tcp://a:1": worker("x", bench=0)}))


def test_progress_is_read_line_by_line_and_a_half_written_line_waits(tmp_path):
    path = tmp_path / "p.jsonl"
    assert fleet._read_new(str(path), 0) == (0, {})  # nothing yet
    path.write_text(json.dumps({"done": 1, "total": 4, "current": "torch: a"}) + "\n"
                    + json.dumps({"done": 2, "total": 4, "current": "torch: b"}) + "\n" + '{"done": 3')
    offset, latest = fleet._read_new(str(path), 0)
    assert latest == {"done": 2, "total": 4, "current": "torch: b"}
    with open(path, "a") as fh:
        fh.write(', "total": 4, "current": "torch: c"}\n')
    offset, latest = fleet._read_new(str(path), offset)
    assert latest["done"] == 3 and latest["current"] == "torch: c"


class Done:
    def __init__(self, result=None, error: Exception | None = None) -> None:
        self._result, self._error = result, error

    def result(self):
        if self._error is not None:
            raise self._error
        return self._result

    def cancel(self) -> None:
        self.cancelled = True


@pytest.mark.parametrize(("code", "state"), [(0, "finished"), (1, "finished"), (130, "cancelled"),
                                             (2, "failed")])
def test_a_finished_task_gives_the_machines_state(code, state):
    m = fleet.MachineState("lab-1")
    fleet._settle(m, Done({"returncode": code, "progress": {"done": 3, "total": 3},
                           "stderr": ["bench: error: --budget 0: ..."]}))
    assert (m.state, m.returncode, m.done) == (state, code, 3)


def test_a_task_whose_worker_died_is_a_lost_machine_and_the_exit_code_says_so():
    out = fleet.FleetOutcome("f")
    out.machines["a"] = fleet.MachineState("a", state="finished", returncode=0)
    out.machines["b"] = fleet.MachineState("b", done=2, total=5, current="torch: c", attempts=1)
    fleet._lost(out.machines["b"], Done(), retry=0, lost_since={})
    assert out.machines["b"].state == "lost"
    assert "after 2 of 5 cases, lost while on torch: c" in out.machines["b"].detail
    assert out.exit_code == 1
    out.machines["b"].state, out.machines["b"].returncode = "finished", 0
    assert out.exit_code == 0
    out.interrupted = True
    assert out.exit_code == 130


def test_with_retry_a_lost_machine_is_waited_for():
    m = fleet.MachineState("b", attempts=1)
    since: dict[str, float] = {}
    fleet._lost(m, Done(), retry=1, lost_since=since)
    assert m.state == "waiting" and "b" in since
    m.attempts = 2
    fleet._lost(m, Done(), retry=1, lost_since=since)
    assert m.state == "lost"


def test_fleet_ids_are_unique_and_say_when():
    a, b = fleet.new_fleet_id(), fleet.new_fleet_id()
    assert a != b and a.startswith("fleet-20") and len(a.rsplit("-", 1)[1]) == 16
