"""``GET /api/openapi.json`` says what the routes enforce: it is valid OpenAPI 3.1, and what it
declares — integer bounds, request bodies, form fields, audio types — is checked here against
the routes themselves, with real requests. Every value sent is read from the document, so a
route and the document that drift apart fail here.

(That every ``/api`` route is in the document: ``test_api.py``.)"""

from __future__ import annotations

import io

import jsonschema
import pytest
from openapi_spec_validator import validate

from audio.formats import FORMATS

#: The first bytes of each audio type an upload may be (enough for ``audio.sniff``); the
#: worker never runs in these tests, so nothing more is read.
STUBS = {
    "audio/mpeg": b"ID3\x04\x00\x00\x00\x00\x00\x00",
    "audio/wav": b"RIFF\x24\x00\x00\x00WAVEfmt ",
    "audio/flac": b"fLaC\x00\x00\x00\x22",
    "audio/ogg": b"OggS\x00\x02\x00\x00",
    "audio/aiff": b"FORM\x00\x00\x00\x2eAIFFCOMM",
    "audio/mp4": b"\x00\x00\x00\x20ftypM4A \x00\x00",
    "audio/aac": b"\xff\xf1\x50\x80\x02\x1f\xfc",
}


def stub(media_type: str = "audio/wav") -> bytes:
    return STUBS[media_type].ljust(256, b"\0")


@pytest.fixture
def document(api_only) -> dict:
    response = api_only.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json


def schema_validator(document: dict, schema: dict) -> jsonschema.Validator:
    """A JSON Schema 2020-12 validator of ``schema``, its ``#/components/...`` references
    resolved in ``document`` (as OpenAPI 3.1 says)."""
    return jsonschema.Draft202012Validator({**schema, "components": document["components"]})


def resolved(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        node: dict = document
        for key in schema["$ref"].removeprefix("#/").split("/"):
            node = node[key]
        schema = node
    return schema


def example(schema: dict, full: bool) -> object:
    """A value of ``schema``: its example, else the least one (``full``: with every property)."""
    if "examples" in schema:
        return schema["examples"][0]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return example(schema[key][0], full)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object":
        properties = schema.get("properties", {})
        wanted = properties if full else schema.get("required", [])
        return {name: example(properties[name], full) for name in wanted}
    if kind == "array":
        return [example(schema.get("items", {}), full)] * max(1, schema.get("minItems", 1))
    return {"string": "x", "integer": schema.get("minimum", 1), "boolean": True}.get(
        kind, schema.get("minimum", 0)
    )


def upload(client, data: bytes | None = None, media_type="audio/wav", headers=None, **form):
    return client.post(
        "/api/uploads",
        data={"file": (io.BytesIO(data or stub()), "a.bin", media_type), **form},
        content_type="multipart/form-data",
        headers=headers or {},
    )


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1.")
    validate(document)


def test_every_integer_parameter_is_taken_within_its_bounds_and_refused_outside(api_only, document):
    accepted = upload(api_only)
    assert accepted.status_code == 202, accepted.json
    known = {"job_id": accepted.json["job_id"], "upload_id": accepted.json["upload_id"]}
    checked = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                if schema.get("type") != "integer" or parameter["in"] == "path":
                    continue
                name, where = parameter["name"], parameter["in"]
                assert {"minimum", "maximum"} <= set(schema), (path, name)  # bounds declared
                low, high = schema["minimum"], schema["maximum"]
                url = path.format(**known)  # a path parameter not known here: a KeyError
                for value, fits in ((low, True), (high, True), (low - 1, False), (high + 1, False)):
                    sent = {"query_string": {name: str(value)}}
                    if where == "header":
                        sent = {"headers": {name: str(value)}}
                    with api_only.open(url, method=method.upper(), **sent) as response:
                        code = response.status_code
                        error = None if code < 400 else response.json["error"]["code"]
                    if fits:
                        assert code < 400, (method, path, where, name, value, code, error)
                    else:
                        assert (code, error) == (400, "bad_parameter"), (path, name, value)
                if "default" in schema:  # an answer that says what it used says the default
                    with api_only.open(url, method=method.upper()) as response:
                        said = response.json if response.is_json else {}
                    assert said.get(name, schema["default"]) == schema["default"], (path, name)
                checked.append((path, name))
    events = "/api/jobs/{job_id}/events"
    assert {
        ("/api/jobs", "limit"),
        ("/api/jobs", "offset"),
        ("/api/dead-letters", "limit"),
        (events, "Last-Event-ID"),
        (events, "last_event_id"),
    } <= set(checked)


def test_each_dead_letter_retry_body_the_document_declares_is_taken(api_only, document):
    operation = document["paths"]["/api/dead-letters/retry"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    validator = schema_validator(document, schema)
    variants = resolved(document, schema)["oneOf"]
    assert len(variants) == 2
    for variant in variants:
        for full in (False, True):
            body = example(variant, full)
            validator.validate(body)  # the document's own example is valid by it
            response = api_only.post("/api/dead-letters/retry", json=body)
            assert response.status_code in (200, 202), (body, response.json)
    for body in (
        {},
        [],
        {"ids": []},
        {"ids": "1"},
        {"ids": [["1"]]},
        {"ids": ["1"], "all": True},
        {"ids": ["1"], "queue": "pipeline"},
        {"all": False},
        {"all": "yes"},
        {"all": True, "queue": 5},
        {"all": True, "queue": "*"},
        {"all": True, "queue": "pipe line"},
        {"all": True, "actor": ["run_stage"]},
    ):
        assert not validator.is_valid(body), body
        response = api_only.post("/api/dead-letters/retry", json=body)
        assert response.status_code == 400, (body, response.status_code)
        assert response.json["error"]["code"] == "bad_body"


def test_a_job_patch_the_document_declares_is_taken(api_only, document):
    job_id = upload(api_only).json["job_id"]
    operation = document["paths"]["/api/jobs/{job_id}"]["patch"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    validator = schema_validator(document, schema)
    fields = resolved(document, schema)["properties"]
    longest = fields["error"]["maxLength"]
    bodies = [{"status": status} for status in fields["status"]["enum"]] + [
        {"status": "failed", "error": "x" * longest},
        {"status": "failed", "error": None},
        {"status": "failed", "error": "x" * (longest + 1)},
        {"status": "failed", "error": "a\0b"},
        {"status": "nonsense"},
        {"error": "x"},
    ]
    for body in bodies:
        response = api_only.patch(f"/api/jobs/{job_id}", json=body)
        assert (response.status_code == 200) == validator.is_valid(body), (body, response.json)
        if response.status_code != 200:
            assert response.status_code == 400, (body, response.status_code)


def test_the_upload_form_and_its_audio_types_are_as_declared(api_only, document):
    operation = document["paths"]["/api/uploads"]["post"]
    multipart = operation["requestBody"]["content"]["multipart/form-data"]
    form = resolved(document, multipart["schema"])
    validator = schema_validator(document, multipart["schema"])
    fields = form["properties"]

    # Every audio type the document lists is taken, and recorded as that type; a batch's
    # files are the same.
    listed = multipart["encoding"]["file"]["contentType"]
    batch = document["paths"]["/api/batches"]["post"]["requestBody"]["content"]
    assert batch["multipart/form-data"]["encoding"]["file"]["contentType"] == listed
    declared = [media_type.strip() for media_type in listed.split(",")]
    assert sorted(declared) == sorted(STUBS)
    for media_type in declared:
        response = upload(api_only, stub(media_type), media_type)
        assert response.status_code == 202, (media_type, response.json)
        found = api_only.get(f"/api/uploads/{response.json['upload_id']}").json
        assert found["content_type"] == media_type
    refused = upload(api_only, b"just some notes\n" * 16, "text/plain")
    assert refused.status_code == 400 and refused.json["error"]["code"] == "not_audio"

    # Each field: taken when the document says it is valid, refused (400) when not.
    lufs = next(s for s in fields["normalize"]["anyOf"] if s.get("type") == "number")
    presets = next(s for s in fields["normalize"]["anyOf"] if "enum" in s)["enum"]
    peak = fields["true_peak"]
    forms: list[dict] = [
        *({"formats": name} for name in FORMATS),
        {"formats": ",".join(FORMATS)},
        {"formats": "mp4"},
        {"formats": "mp3,xyz"},
        *({"normalize": name} for name in presets),
        *({"normalize": f"{v:g}"} for v in (lufs["minimum"], lufs["maximum"])),
        *({"normalize": f"{v:g}"} for v in (lufs["minimum"] - 1, lufs["maximum"] + 1)),
        {"normalize": "loud"},
        *(
            {"normalize": presets[0], "true_peak": f"{v:g}"}
            for v in (peak["minimum"], peak["maximum"], peak["minimum"] - 1, peak["maximum"] + 1)
        ),
        {"true_peak": f"{peak['maximum']:g}"},  # without normalize
    ]
    for fields_sent in forms:
        # A number field is sent as its text: valid when that number is.
        as_sent = {k: _number_or_text(v) for k, v in fields_sent.items()}
        valid = validator.is_valid({"file": "…", **as_sent})
        response = upload(api_only, **fields_sent)
        assert response.status_code == (202 if valid else 400), (fields_sent, response.json)

    header = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")
    longest = header["schema"]["maxLength"]
    for length, status in ((longest, 202), (longest + 1, 400)):
        response = upload(api_only, headers={"Idempotency-Key": "k" * length})
        assert response.status_code == status, (length, response.json)


def _number_or_text(value: str) -> object:
    try:
        return float(value)
    except ValueError:
        return value
