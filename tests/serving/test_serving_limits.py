"""Bad input and limits on a real server: a corpus of malformed requests is answered 4xx every time and
the server keeps answering; body size (413, chunked too), body timeout (408), request timeout (504),
overload (a fast 503)."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")
pytest.importorskip("prometheus_client")

import httpx  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from serving_testkit import (  # noqa: E402
    COLUMNS,
    PROBE,
    ServerThread,
    churn_frame,
    raw_request,
    save_slow,
    status_of,
    train,
)

from mlark.models import save_model  # noqa: E402
from mlark.serving import ServeOptions, Sources, create_app  # noqa: E402

JSON = "application/json"
ARROW = "application/vnd.apache.arrow.stream"
ARROW_FILE = "application/vnd.apache.arrow.file"
PARQUET = "application/vnd.apache.parquet"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("limits") / "churn-rf"
    save_model(train(0), folder, input_example=churn_frame(99, rows=3)[COLUMNS])
    return folder


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[ServerThread]:
    app = create_app([str(model_dir)], Sources(), ServeOptions(max_body=256 * 1024, timeout=2.0))
    with ServerThread(app) as s:
        yield s


def _arrow(table: pa.Table, file: bool = False) -> bytes:
    sink = pa.BufferOutputStream()
    with (pa.ipc.new_file if file else pa.ipc.new_stream)(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _corpus() -> list[tuple[str, bytes, str | None]]:
    rec = json.dumps({"records": [PROBE]}).encode()
    good_parquet = _parquet(pa.Table.from_pylist([PROBE]))
    random = os.urandom(2048)
    cases: list[tuple[str, bytes, str | None]] = [
        ("empty", b"", JSON),
        ("whitespace", b"  \n ", JSON),
        ("truncated", rec[: len(rec) // 2], JSON),
        ("truncated-at-1", rec[:1], JSON),
        ("null", b"null", JSON),
        ("true", b"true", JSON),
        ("number", b"42", JSON),
        ("string", b'"records"', JSON),
        ("empty-object-row", b'{"records": [{}]}', JSON),
        ("empty-object", b"{}", JSON),
        ("records-not-list", b'{"records": {"tenure": 1}}', JSON),
        ("records-of-numbers", b'{"records": [1, 2, 3]}', JSON),
        ("records-of-lists", b'{"records": [[1, 2, 3, 4]]}', JSON),
        ("records-mixed", b'{"records": [{"tenure": 1}, 5]}', JSON),
        ("columns-not-lists", b'{"columns": {"tenure": 1}}', JSON),
        ("columns-ragged", b'{"columns": {"tenure": [1, 2], "monthly": [1.0]}}', JSON),
        ("columns-not-object", b'{"columns": [1, 2]}', JSON),
        ("split-not-object", b'{"split": "x"}', JSON),
        ("split-row-width", b'{"split": {"columns": ["tenure", "monthly"], "data": [[1, 2, 3]]}}', JSON),
        ("split-row-not-list", b'{"split": {"columns": ["tenure"], "data": [5]}}', JSON),
        ("split-columns-not-strings", b'{"split": {"columns": [1, 2], "data": [[1, 2]]}}', JSON),
        ("split-duplicate-columns", b'{"split": {"columns": ["a", "a"], "data": [[1, 2]]}}', JSON),
        ("split-unknown-key", b'{"split": {"columns": ["a"], "data": [[1]], "x": 1}}', JSON),
        ("instance-number", b'{"instance": 5}', JSON),
        ("inputs-ragged", b'{"inputs": [[1, 2], [3]]}', JSON),
        ("inputs-3d", b'{"inputs": [[[1, 2], [3, 4]]]}', JSON),
        ("inputs-mixed", b'{"inputs": [[1, "a", null, {}]]}', JSON),
        ("inputs-string", b'{"inputs": "abc"}', JSON),
        ("inputs-named-ragged", b'{"inputs": {"a": [[1, 2]], "b": [[1], [2]]}}', JSON),
        ("two-keys", b'{"records": [], "columns": {}}', JSON),
        ("params", b'{"records": [], "params": {"x": 1}}', JSON),
        ("wrong-type-string", json.dumps({"records": [{**PROBE, "tenure": "abc"}]}).encode(), JSON),
        ("wrong-type-bool-string", json.dumps({"records": [{**PROBE, "tenure": "true"}]}).encode(), JSON),
        ("wrong-type-object", json.dumps({"records": [{**PROBE, "tenure": {"a": 1}}]}).encode(), JSON),
        ("wrong-type-list", json.dumps({"records": [{**PROBE, "monthly": [1.0]}]}).encode(), JSON),
        ("null-int", json.dumps({"records": [{**PROBE, "tenure": None}]}).encode(), JSON),
        ("fractional-int", json.dumps({"records": [{**PROBE, "age": 41.5}]}).encode(), JSON),
        ("huge-int", b'{"records": [{"tenure": 123456789012345678901234567890, "monthly": 1, "support_calls": 1, "age": 1}]}', JSON),
        ("huge-int-in-range-of-uint", b'{"records": [{"tenure": 18446744073709551615, "monthly": 1, "support_calls": 1, "age": 1}]}', JSON),
        ("int-beyond-float", b'{"records": [{"tenure": 1, "monthly": 123456789012345678901, "support_calls": 1, "age": 1}]}', JSON),
        ("too-many-digits", b'{"records": [{"tenure": ' + b"9" * 5000 + b"}]}", JSON),
        ("huge-float", b'{"records": [{"tenure": 1, "monthly": 1e999, "support_calls": 1, "age": 1}]}', JSON),
        ("huge-negative-float", b'{"records": [{"tenure": 1, "monthly": -1e999, "support_calls": 1, "age": 1}]}', JSON),
        ("float-overflowing-int", b'{"records": [{"tenure": 1e300, "monthly": 1, "support_calls": 1, "age": 1}]}', JSON),
        ("nan-literal", b'{"records": [{"tenure": NaN, "monthly": 1, "support_calls": 1, "age": 1}]}', JSON),
        ("infinity-literal", b'{"records": [{"tenure": 1, "monthly": Infinity, "support_calls": 1, "age": 1}]}', JSON),
        ("neg-infinity-literal", b'{"records": [{"tenure": 1, "monthly": -Infinity, "support_calls": 1, "age": 1}]}', JSON),
        ("nan-inputs", b'{"inputs": [[NaN, 1, 2, 3]]}', JSON),
        ("deep-lists", b"[" * 100_000 + b"]" * 100_000, JSON),
        ("deep-objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, JSON),
        ("deep-inputs", b'{"inputs": ' + b"[" * 1000 + b"1" + b"]" * 1000 + b"}", JSON),
        ("deep-unbalanced", b"[" * 100_000, JSON),
        ("duplicate-keys", b'{"records": [{"tenure": 1, "tenure": 2}]}', JSON),
        ("invalid-utf8", b'\xff\xfe{"records": []}', JSON),
        ("utf16", json.dumps({"records": [PROBE]}).encode("utf-16"), JSON),
        ("binary-as-json", random, JSON),
        ("nul-bytes", b'{"records": [{"ten\x00ure": 1}]}', JSON),
        ("long-key", json.dumps({"records": [{"x" * 100_000: 1}]}).encode(), JSON),
        ("no-content-type", rec, None),
        ("text-plain", rec, "text/plain"),
        ("xml", b"<records/>", "application/xml"),
        ("form", b"a=1&b=2", "application/x-www-form-urlencoded"),
        ("multipart", b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x"),
        ("garbage-content-type", rec, "\x01\x02"),
        ("junk-arrow-stream", random, ARROW),
        ("junk-arrow-file", random, ARROW_FILE),
        ("empty-arrow", b"", ARROW),
        ("arrow-magic-then-junk", b"ARROW1\x00\x00" + random, ARROW_FILE),
        ("arrow-truncated", _arrow(pa.Table.from_pylist([PROBE]))[:60], ARROW),
        ("arrow-wrong-columns", _arrow(pa.table({"x": [1, 2]})), ARROW),
        ("arrow-nested", _arrow(pa.table({"tenure": [[1, 2]], "monthly": [{"a": 1}], "support_calls": [1], "age": [1]})), ARROW),
        ("arrow-strings", _arrow(pa.table({k: ["x"] for k in COLUMNS})), ARROW),
        ("junk-parquet", random, PARQUET),
        ("parquet-magic-junk", b"PAR1" + random + b"PAR1", PARQUET),
        ("parquet-truncated", good_parquet[: len(good_parquet) // 2], PARQUET),
        ("parquet-wrong-columns", _parquet(pa.table({"y": [1.0]})), PARQUET),
        ("empty-parquet", b"", PARQUET),
        ("junk-csv", b"\x00\x01\x02\xff\xfe", "text/csv"),
        ("csv-header-only-wrong", b"a,b\n", "text/csv"),
        ("csv-ragged", b"tenure,monthly\n1,2,3\n", "text/csv"),
        ("csv-strings", ("\n".join([",".join(COLUMNS), "a,b,c,d"]) + "\n").encode(), "text/csv"),
        ("empty-csv", b"", "text/csv"),
    ]
    return cases


CORPUS = _corpus()


@pytest.mark.parametrize("name,body,ctype", CORPUS, ids=[c[0] for c in CORPUS])
@pytest.mark.parametrize("path", ["/v1/models/churn-rf/predict", "/invocations"])
def test_malformed_requests_are_4xx_and_the_server_lives(server: ServerThread, name: str, body: bytes,
                                                        ctype: str | None, path: str) -> None:
    headers = {} if ctype is None else {"content-type": ctype}
    r = httpx.post(server.url + path, content=body, headers=headers, timeout=30)
    assert 400 <= r.status_code < 500, f"{name}: {r.status_code} {r.text[:300]}"
    if r.headers.get("content-type", "").startswith("application/json"):  # else uvicorn refused the HTTP itself
        doc = r.json()
        assert doc["status"] == r.status_code and doc["message"] and doc["error_code"]
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200


def test_the_whole_corpus_at_once_then_a_good_request(server: ServerThread) -> None:
    import concurrent.futures as cf

    def send(case: tuple[str, bytes, str | None]) -> int:
        name, body, ctype = case
        headers = {} if ctype is None else {"content-type": ctype}
        return httpx.post(server.url + "/v1/models/churn-rf/predict", content=body, headers=headers, timeout=30).status_code

    with cf.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(send, CORPUS * 2))
    assert all(400 <= s < 500 for s in statuses), statuses
    r = httpx.post(server.url + "/v1/models/churn-rf/predict", json={"records": [PROBE]}, timeout=30)
    assert r.status_code == 200
    metrics = httpx.get(server.url + "/metrics").text
    assert 'status="500"' not in metrics


@pytest.mark.parametrize("path,method", [
    ("/v1/models/churn-rf/predict", "GET"), ("/v1/models/churn-rf/predict", "PUT"), ("/invocations", "GET"),
    ("/nothing", "GET"), ("/nothing", "POST"), ("/v1/models/%00/predict", "POST"),
    ("/v1/models/..%2F..%2Fetc%2Fpasswd/predict", "POST"), ("/v1/models/" + "x" * 10_000 + "/predict", "POST"),
    ("/v1/models/models%3A%2F%2F%2F/predict", "POST"), ("/v1/models/%40%40/predict", "POST"),
    ("/v1/models/%FF%FE/predict", "POST"), ("/healthz", "DELETE"),
])
def test_wrong_paths_and_methods(server: ServerThread, path: str, method: str) -> None:
    r = httpx.request(method, server.url + path, json={"records": [PROBE]}, timeout=30)
    assert 400 <= r.status_code < 500, (path, method, r.status_code, r.text[:200])
    assert r.json()["error_code"]


def test_body_too_large_with_a_length(server: ServerThread) -> None:
    rows = [PROBE] * 20_000
    r = httpx.post(server.url + "/v1/models/churn-rf/predict", json={"records": rows}, timeout=30)
    assert r.status_code == 413 and r.json()["limit"] == 256 * 1024


def test_body_too_large_chunked_without_a_length(server: ServerThread) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"records": ['
        for _ in range(20_000):
            yield json.dumps(PROBE).encode() + b","
        yield b"{}]}"

    r = httpx.post(server.url + "/v1/models/churn-rf/predict", content=chunks(), headers={"content-type": JSON},
                   timeout=30)
    assert r.status_code == 413
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_raw_protocol_abuse(server: ServerThread) -> None:
    port = server.port
    head = b"POST /v1/models/churn-rf/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    # a length that is not a number
    assert 400 <= status_of(raw_request(port, head + b"Content-Length: abc\r\n\r\n{}")) < 500
    # a declared length above the limit: refused before the body is read
    assert status_of(raw_request(port, head + b"Content-Length: 999999999\r\n\r\n{")) == 413
    # a body that never completes: 408 after the timeout (2 s here)
    started = time.monotonic()
    raw = raw_request(port, head + b"Content-Length: 1000\r\n\r\n{\"records\":", read_timeout=20)
    assert status_of(raw) == 408, raw[:300]
    assert time.monotonic() - started < 10
    # a chunked body with broken chunk framing: the HTTP layer refuses it
    raw = raw_request(port, head + b"Transfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n")
    assert raw == b"" or 400 <= status_of(raw) < 500
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_request_timeout_is_504(tmp_path: Path) -> None:
    folder = save_slow(tmp_path / "slow", 1.5)
    app = create_app([str(folder)], Sources(), ServeOptions(timeout=0.5, max_wait_ms=0))
    with ServerThread(app, ready_timeout=120) as s:
        started = time.monotonic()
        r = httpx.post(s.url + "/v1/models/slow/predict", json={"records": [PROBE]}, timeout=30)
        assert r.status_code == 504 and r.json()["error"] == "Timeout"
        assert time.monotonic() - started < 1.4


def test_overload_is_a_fast_503(tmp_path: Path) -> None:
    import concurrent.futures as cf

    folder = save_slow(tmp_path / "slow", 1.0)
    app = create_app([str(folder)], Sources(), ServeOptions(max_queue=4, max_batch=1, max_wait_ms=0, timeout=60))
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with ServerThread(app, ready_timeout=120) as s, httpx.Client(base_url=s.url, limits=limits, timeout=60) as client:
        def send(_: int) -> tuple[int, float]:
            t0 = time.monotonic()
            r = client.post("/v1/models/slow/predict", json={"records": [PROBE]})
            return r.status_code, time.monotonic() - t0

        with cf.ThreadPoolExecutor(20) as pool:
            results = list(pool.map(send, range(20)))
        statuses = [st for st, _ in results]
        assert set(statuses) <= {200, 503}, statuses
        assert statuses.count(503) >= 10 and statuses.count(200) >= 4
        refused = [t for st, t in results if st == 503]
        served = [t for st, t in results if st == 200]
        assert max(served) > 3.0  # the queue was served one by one, a second each ...
        assert max(refused) < 1.5, refused  # ... while the overflow was answered at once, not after waiting
        r = httpx.post(s.url + "/v1/models/slow/predict", json={"records": [PROBE]}, timeout=60)
        assert r.status_code == 200
        assert 'status="503"' in httpx.get(s.url + "/metrics").text
