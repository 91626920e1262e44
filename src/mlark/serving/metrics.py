"""Prometheus metrics of the server (``GET /metrics``).

=================================================  =========  ========================================
metric                                             type       labels
=================================================  =========  ========================================
``mlark_serving_requests_total``                   counter    model, endpoint, status
``mlark_serving_request_errors_total``             counter    model, endpoint, status, error
``mlark_serving_request_duration_seconds``         histogram  model, endpoint
``mlark_serving_predict_duration_seconds``         histogram  model (one ``predict`` call on a batch)
``mlark_serving_batch_rows``                       histogram  model (rows per ``predict`` call)
``mlark_serving_batch_requests``                   histogram  model (requests merged per call)
``mlark_serving_queue_depth``                      gauge      model
``mlark_serving_model_info``                       gauge      model, ref, version, digest, registered (1 = served now)
``mlark_serving_model_ready``                      gauge      model (1 once a version is loaded)
``mlark_serving_reloads_total``                    counter    model (versions swapped in after the first)
``mlark_serving_reload_refusals_total``            counter    model (versions refused: failed to load or smoke test)
=================================================  =========  ========================================

``model`` is the served name; requests for a model the server does not serve are counted under
``model=""`` so that clients cannot create label values. With ``--workers N`` every worker writes
to prometheus-client's multiprocess files (``multiprocess_dir``) and ``/metrics`` reports the sum
of all workers (gauges: ``model_info`` per worker process, ``pid`` label; ``model_ready`` the minimum;
``queue_depth`` the sum).
"""

from __future__ import annotations

from typing import Any

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536, 262144, 1048576)
REQUEST_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    def __init__(self, multiprocess_dir: str | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("mlark_serving_requests", "Requests answered.", ["model", "endpoint", "status"],
                                registry=r)
        self.errors = Counter("mlark_serving_request_errors", "Requests answered with an error.",
                              ["model", "endpoint", "status", "error"], registry=r)
        self.latency = Histogram("mlark_serving_request_duration_seconds", "Time from request to response.",
                                 ["model", "endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.predict_latency = Histogram("mlark_serving_predict_duration_seconds",
                                         "Time of one predict call on a merged batch.", ["model"],
                                         buckets=LATENCY_BUCKETS, registry=r)
        self.batch_rows = Histogram("mlark_serving_batch_rows", "Rows per predict call.", ["model"],
                                    buckets=ROW_BUCKETS, registry=r)
        self.batch_requests = Histogram("mlark_serving_batch_requests", "Requests merged into one predict call.",
                                        ["model"], buckets=REQUEST_BUCKETS, registry=r)
        self.queue_depth = Gauge("mlark_serving_queue_depth", "Requests waiting for a predict call.", ["model"],
                                 registry=r, multiprocess_mode="livesum")
        self.model_info = Gauge("mlark_serving_model_info", "The version served (1) and those served before (0).",
                                ["model", "ref", "version", "digest", "registered"], registry=r,
                                multiprocess_mode="liveall")
        self.ready = Gauge("mlark_serving_model_ready", "1 once a version of the model is loaded.", ["model"],
                           registry=r, multiprocess_mode="livemin")
        self.reloads = Counter("mlark_serving_reloads", "New versions swapped in after the first.", ["model"],
                               registry=r)
        self.refusals = Counter("mlark_serving_reload_refusals",
                                "New versions refused (failed to load or to predict on their input example).",
                                ["model"], registry=r)
        self._children: dict[tuple[Any, ...], Any] = {}

    # The hot path binds label values once per combination.
    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_request(self, model: str, endpoint: str, status: int, seconds: float, error: str | None = None) -> None:
        code = str(status)
        self._child(self.requests, model, endpoint, code).inc()
        self._child(self.latency, model, endpoint).observe(seconds)
        if status >= 400:
            self._child(self.errors, model, endpoint, code, error or "").inc()

    def observe_batch(self, model: str, rows: int, requests: int, seconds: float) -> None:
        self._child(self.batch_rows, model).observe(rows)
        self._child(self.batch_requests, model).observe(requests)
        self._child(self.predict_latency, model).observe(seconds)

    def set_queue(self, model: str, depth: int) -> None:
        self._child(self.queue_depth, model).set(depth)

    def served(self, model: str, ref: str, version: str, digest: str, registered: str | None,
               previous: tuple[str, str, str, str] | None) -> None:
        if previous is not None:
            self.model_info.labels(model, *previous).set(0)
        self.model_info.labels(model, ref, version, digest, registered or "").set(1)
        self.ready.labels(model).set(1)

    def not_ready(self, model: str) -> None:
        self.ready.labels(model).set(0)

    def reloaded(self, model: str) -> None:
        self.reloads.labels(model).inc()

    def refused(self, model: str) -> None:
        self.refusals.labels(model).inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess_dir:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
