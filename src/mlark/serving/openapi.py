"""The OpenAPI 3.1 description of the server (``GET /openapi.json``), with each served model's input schema."""

from __future__ import annotations

from typing import Any

_JSON_TYPES = {
    "bool": {"type": "boolean"},
    "string": {"type": "string"},
    "binary": {"type": "string", "contentEncoding": "base64"},
    "datetime": {"type": "string", "format": "date-time"},
}

ERROR = {"$ref": "#/components/schemas/Error"}


def _value_schema(dtype: str) -> dict[str, Any]:
    if dtype in _JSON_TYPES:
        return dict(_JSON_TYPES[dtype])
    if dtype.startswith(("int", "uint")):
        return {"type": "integer", "format": dtype}
    return {"type": ["number", "null"], "format": dtype}


def _record_schema(signature: Any) -> dict[str, Any] | None:
    if signature is None or signature.inputs.kind != "columns":
        return None
    props = {str(s.name): _value_schema(s.dtype) for s in signature.inputs.specs}
    return {"type": "object", "properties": props, "required": list(props)}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Malformed body (not JSON, not Arrow/Parquet/CSV, or a shape none of those listed)",
        404: "No such model is served",
        408: "The body did not arrive within the timeout",
        413: "The body is larger than --max-body",
        415: "Unsupported content type",
        422: "The input does not fit the model's signature (the field is named) or the model refused it",
        503: "Overloaded (queue full) or the model is not loaded yet; retry",
        504: "No prediction within the timeout",
    }
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": ERROR}}} for c in codes}


def build(server: Any) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        mlark_version = version("mlark")
    except PackageNotFoundError:
        mlark_version = "unknown"
    bodies = {
        "application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}},
        "text/csv": {"schema": {"type": "string"}},
        "application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}},
        "application/vnd.apache.arrow.file": {"schema": {"type": "string", "format": "binary"}},
        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
    }
    version_headers = {
        "mlark-model": {"description": "The served model's name", "schema": {"type": "string"}},
        "mlark-model-version": {"description": "The version that predicted this answer, e.g. churn-rf:v3",
                                "schema": {"type": "string"}},
        "mlark-model-digest": {"description": "Its content digest", "schema": {"type": "string"}},
        "mlark-registered-version": {"description": "The registered version, e.g. models:/churn/5",
                                     "schema": {"type": "string"}},
    }
    predict = {
        "post": {
            "summary": "Predict with a served model",
            "parameters": [{
                "name": "ref", "in": "path", "required": True, "schema": {"type": "string"},
                "description": "The served name or the reference, URL-encoded (models%3A%2Fchurn%40production)",
            }],
            "requestBody": {"required": True, "content": bodies},
            "responses": {
                "200": {
                    "description": "One prediction per input row",
                    "headers": version_headers,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictResponse"}},
                                "application/vnd.apache.arrow.stream": {
                                    "schema": {"type": "string", "format": "binary"}}},
                },
                **_errors(400, 404, 408, 413, 415, 422, 503, 504),
            },
        }
    }
    paths: dict[str, Any] = {
        "/v1/models/{ref}/predict": predict,
        "/v1/models": {"get": {"summary": "What is served: each model's reference, the version it resolves to, "
                                          "since when, refused versions",
                               "responses": {"200": {"description": "The served models",
                                                     "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "The server answers"}}}},
        "/readyz": {"get": {"summary": "Readiness: every model loaded",
                            "responses": {"200": {"description": "Ready"}, "503": {"description": "Not yet"}}}},
        "/metrics": {"get": {"summary": "Prometheus metrics",
                             "responses": {"200": {"description": "Text exposition format",
                                                   "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    }
    if len(server.models) == 1:
        paths["/invocations"] = {"post": {
            "summary": "MLflow scoring protocol (dataframe_split, dataframe_records, instances, inputs)",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/MlflowRequest"}},
                "text/csv": {"schema": {"type": "string"}}}},
            "responses": {"200": {"description": "{\"predictions\": [...]}", "headers": version_headers,
                                  "content": {"application/json": {"schema": {
                                      "type": "object", "properties": {"predictions": {}}}}}},
                          **_errors(400, 408, 413, 415, 422, 503, 504)},
        }}
        paths["/ping"] = {"get": {"summary": "MLflow health check",
                                  "responses": {"200": {"description": "Ready"}, "503": {"description": "Not yet"}}}}
    models = {}
    for model in server.models:
        cur = model.current
        sig = None if cur is None else cur.predictor.signature
        record = _record_schema(sig)
        models[model.name] = {
            "ref": model.ref,
            "path": f"/v1/models/{model.name}/predict",
            "signature": None if sig is None else sig.to_json(),
            **({"record": record} if record else {}),
        }
    record_schemas = [m["record"] for m in models.values() if "record" in m]
    record = record_schemas[0] if len(record_schemas) == 1 else {"type": "object"}
    rows = {"type": "array", "items": record}
    return {
        "openapi": "3.1.0",
        "info": {"title": "mlark model server", "version": mlark_version,
                 "description": "Predictions from versioned models, following their aliases and stages."},
        "paths": paths,
        "components": {"schemas": {
            "PredictRequest": {"oneOf": [
                {"type": "object", "properties": {"records": rows}, "required": ["records"]},
                {"type": "object", "properties": {"columns": {"type": "object",
                                                               "additionalProperties": {"type": "array"}}},
                 "required": ["columns"]},
                {"type": "object", "properties": {"split": {"type": "object", "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": {"type": "array", "items": {"type": "array"}}}}}, "required": ["split"]},
                {"type": "object", "properties": {"instance": record}, "required": ["instance"]},
                {"type": "object", "properties": {"inputs": {}}, "required": ["inputs"]},
                {"$ref": "#/components/schemas/MlflowRequest"},
            ]},
            "MlflowRequest": {"oneOf": [
                {"type": "object", "properties": {"dataframe_split": {"type": "object"}},
                 "required": ["dataframe_split"]},
                {"type": "object", "properties": {"dataframe_records": rows}, "required": ["dataframe_records"]},
                {"type": "object", "properties": {"instances": {}}, "required": ["instances"]},
                {"type": "object", "properties": {"inputs": {}}, "required": ["inputs"]},
            ]},
            "PredictResponse": {"type": "object", "properties": {
                "predictions": {"description": "One entry per row (a value, a list, or an object per row for "
                                               "models returning tables)"},
                "model": {"type": "string"}, "version": {"type": "string"}, "registered": {"type": "string"}},
                "required": ["predictions", "model", "version"]},
            "Error": {"type": "object", "properties": {
                "error_code": {"type": "string"}, "error": {"type": "string"}, "message": {"type": "string"},
                "status": {"type": "integer"}, "field": {"type": "string"}},
                "required": ["error_code", "message", "status"]},
        }},
        "x-mlark-models": models,
    }
