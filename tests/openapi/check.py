"""Check the admin API's OpenAPI document, and every admin response the integration tests got
against it.

1. The document (assets/openapi.json) is valid OpenAPI 3.1 (openapi-spec-validator).
2. Each response the tests recorded (tests/integration/harness.rs writes one JSON line per admin
   response) validates against the document's schema for its route and status (openapi-core):
   a field the document does not name fails (every object says `additionalProperties: false`),
   and so does a status it does not list. A path no route has may only have answered 404 (or
   401, since keys are checked before routing); a method a route does not serve, only 405.
3. Every operation of the document was seen answering its success status at least once, so
   the document describes no route the tests never reached.

Usage: check.py [responses.jsonl]   (default: target/admin-responses.jsonl)
"""

import json
import sys
from collections import defaultdict
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from openapi_core import OpenAPI
from openapi_core.templating.paths.exceptions import (
    OperationNotFound,
    PathNotFound,
    PathsNotFound,
)
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from openapi_spec_validator import validate

ROOT = Path(__file__).resolve().parents[2]

# Operations whose success the tests over HTTP cannot reach on purpose, each with the reason.
UNREACHED = {
    # A cancel succeeds only while no driver holds the move, and the request that starts a move
    # drives it for 25 s: over HTTP that needs an organisation whose copy outlasts that. The
    # cancel is tested on SQLite (src/service/shard_tests.rs); its body is `{move: Move}`, and
    # `Move` is checked in every GET of a moving tenant.
    ("/admin/v1/tenants/{sub}/move", "delete"),
}
DOCUMENT = ROOT / "assets" / "openapi.json"


def main() -> int:
    recorded = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "target" / "admin-responses.jsonl")
    spec = json.loads(DOCUMENT.read_text())
    validate(spec)
    api = OpenAPI.from_dict(spec)

    failures = []
    seen = defaultdict(set)  # (path template, method) -> statuses
    lines = recorded.read_text().splitlines()
    for line in lines:
        r = json.loads(line)
        url = urlsplit(r["path"])
        path = url.path.rstrip("/") or "/"
        method = r["method"].lower()
        status = r["status"]
        body = r["body"].encode()
        request = MockRequest("http://127.0.0.1", method, path, args=parse_qs(url.query))
        response = MockResponse(body, status_code=status, content_type=r["contentType"] or "application/json")
        what = f"{r['method']} {r['path']} -> {status}"
        try:
            api.validate_response(request, response)
        except (PathNotFound, PathsNotFound):
            if status not in (401, 404):
                failures.append(f"{what}: no such path in the document")
            continue
        except OperationNotFound:
            if status not in (401, 405):
                failures.append(f"{what}: the document has no {r['method']} here")
            continue
        except ResponseNotFound:
            failures.append(f"{what}: the document lists no {status} for this operation")
            continue
        except Exception as e:  # a schema mismatch: say which, with its causes
            causes = getattr(e, "schema_errors", None) or getattr(getattr(e, "__cause__", None), "schema_errors", None) or []
            detail = "; ".join(f"{'/'.join(map(str, c.absolute_path))}: {c.message}" for c in causes) or repr(e)
            failures.append(f"{what}: {detail[:600]}\n    body: {r['body'][:300]}")
            continue
        seen[(matched(spec, path), method)].add(status)

    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "parameters" or (path, method) in UNREACHED:
                continue
            ok = [int(s) for s in operation["responses"] if s.startswith("2")]
            if not seen[(path, method)] & set(ok):
                failures.append(f"{method.upper()} {path}: never answered {ok} in the tests")

    for f in failures:
        print(f"openapi: {f}", file=sys.stderr)
    operations = sum(1 for i in spec["paths"].values() for m in i if m != "parameters")
    print(f"openapi: {len(lines)} admin responses checked against {operations} operations: {len(failures)} failures")
    return 1 if failures else 0


def matched(spec, path):
    """The document's path template that `path` matches (its segments, `{…}` any one)."""
    parts = path.strip("/").split("/")
    for template in spec["paths"]:
        t = template.strip("/").split("/")
        if len(t) == len(parts) and all(a.startswith("{") or a == b for a, b in zip(t, parts)):
            return template
    return None


if __name__ == "__main__":
    sys.exit(main())
