"""The worker protocol, typed: every job and event survives a round trip; anything else is a ProtocolError."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.core.records import PHASES, STATUSES, Record
from bench.core.settings import Settings
from bench.measure import protocol as proto


def record(**kw) -> Record:
    base = dict(run_id="r", machine="m", suite="s", case="batch=8", params='{"batch": 8}',
                framework="torch", framework_version="2", mode="eager", device="cpu", phase="forward",
                status="ok", median_s=1e-3, samples_s=(1e-3, 2e-3), process_rounds=(2,), rounds=2,
                allow_tf32=False)
    return Record(**{**base, **kw})


EVENTS = [
    proto.Env(framework="torch", version="2.3", device="cpu", device_name="Fake CPU", cpus=(0, 1),
              settings={"threads": 2, "tf32": False}, peak_flops_per_s=1e11, memory_method="rss"),
    proto.Unavailable("no GPU here [/x]"),
    proto.CaseStarted("mlp", "batch=8,width=16"),
    proto.Heartbeat(),
    proto.RecordRow(record()),
    proto.RecordRow(record(phase="backward", median_s=math.inf, reason="x\ny", loss_curve=(3.0, 2.0))),
    proto.CaseFinished("mlp", "batch=8,width=16"),
    proto.Done(),
    proto.ProbeResult(version="0.4", devices=("cpu", "cuda:0"), cpus=(0,), settings={"x": 1}),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_event_survives_a_round_trip(event):
    line = proto.encode(event)
    assert line.endswith("\n") and line.count("\n") == 1
    assert json.loads(line)["event"] == event.KIND
    back = proto.decode(line)
    assert type(back) is type(event)
    # Compared as JSON: the rows hold NaN, which is not equal to itself.
    assert proto.encode(back) == line


def test_nan_in_a_row_survives_the_round_trip():
    back = proto.decode(proto.encode(proto.RecordRow(record(median_s=math.nan))))
    assert isinstance(back, proto.RecordRow) and math.isnan(back.record.median_s)


def test_jobs_survive_a_round_trip():
    job = proto.WorkerJob(
        framework="jax", device="cpu", mode="jit", run_id="r", machine="m",
        settings=Settings(threads=2, precision=0.02), repeat=1, parent_pid=123,
        suites=(proto.SuiteCases("/x/s.py", ({"batch": 8, "width": 16},)),),
    )
    assert proto.decode_job(job.to_line()) == job
    probe = proto.ProbeJob(framework="torch", threads=4)
    assert proto.decode_job(probe.to_line()) == probe


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("", "not JSON"),
        ("bench: a banner someone printed\n", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"event": "bogus"}', "unknown event 'bogus'"),
        ('{"case": "x"}', "unknown event None"),
        ('{"event": "case", "suite": "s"}', "malformed case event"),
        ('{"event": "case", "suite": "s", "case": 3}', "is not a string"),
        ('{"event": "heartbeat", "extra": 1}', "unknown fields"),
        ('{"event": "record", "record": "row"}', "not an object"),
        ('{"event": "record", "record": {"run_id": "r"}}', "malformed record event"),
        ('{"event": "env", "framework": "t", "version": "1", "device": "cpu", "device_name": "",'
         ' "cpus": "0-3"}', "is not a list"),
        ('{"event": "env", "framework": "t", "version": "1", "device": "cpu", "device_name": "",'
         ' "peak_flops_per_s": 1' + "0" * 400 + "}", "malformed env event"),
        ("[" * 100_000, "not JSON"),
    ],
)
def test_what_is_not_an_event_is_a_protocol_error(line, words):
    with pytest.raises(proto.ProtocolError) as info:
        proto.decode(line)
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("median_s", "fast"), ("rounds", "many"), ("rounds", 2.5), ("allow_tf32", 1), ("samples_s", [1, "x"]),
     ("status", "great"), ("phase", "sideways"), ("samples_s", None)],
)
def test_a_row_with_a_wrong_type_is_a_protocol_error(field, value):
    row = record().to_dict()
    row[field] = value
    with pytest.raises(proto.ProtocolError):
        proto.decode(json.dumps({"event": "record", "record": row}))


def test_a_malformed_job_is_a_protocol_error():
    for line in ("", "null", '{"framework": "torch"}', '{"probe": true, "framework": "t"}',
                 '{"framework": "t", "device": "cpu", "mode": "m", "run_id": "r", "machine": "m", '
                 '"settings": {"threads": 1, "bogus": 2}}'):
        with pytest.raises(proto.ProtocolError):
            proto.decode_job(line)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from([*proto.KINDS, "bogus"]), body=st.dictionaries(st.text(max_size=12), JSON,
                                                                       max_size=6))
def test_decode_returns_an_event_or_raises_a_protocol_error(kind, body):
    line = json.dumps({"event": kind, **body})
    try:
        event = proto.decode(line)
    except proto.ProtocolError:
        return
    assert isinstance(event, tuple(proto.KINDS.values()))
    # Compared as JSON: NaN, which the body may hold, is not equal to itself.
    assert proto.encode(proto.decode(proto.encode(event))) == proto.encode(event)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_decode_of_any_text_is_an_event_or_a_protocol_error(text):
    try:
        event = proto.decode(text)
    except proto.ProtocolError as exc:
        assert str(exc)  # says what was wrong
    else:
        assert isinstance(event, tuple(proto.KINDS.values()))


FLOATS = st.floats(allow_nan=False) | st.just(math.nan)


@settings(max_examples=100, deadline=None)
@given(median=FLOATS, samples=st.lists(FLOATS, max_size=5), rounds=st.integers(-(2**62), 2**62),
       phase=st.sampled_from(PHASES), status=st.sampled_from(STATUSES), reason=st.text(max_size=30))
def test_any_row_survives_the_round_trip(median, samples, rounds, phase, status, reason):
    row = record(median_s=median, samples_s=tuple(samples), rounds=rounds, phase=phase, status=status,
                 reason=reason)
    back = proto.decode(proto.encode(proto.RecordRow(row)))
    assert isinstance(back, proto.RecordRow)
    # NaN != NaN: compare the JSON, which spells NaN the same each time.
    assert json.dumps(back.record.to_dict()) == json.dumps(row.to_dict())
