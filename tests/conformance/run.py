"""Run the external SCIM conformance suite scim2-tester against the built Worker.

Starts `wrangler dev` on a free port (a config without [build], a temporary --persist-to
directory, migrations applied, a random ADMIN_TOKEN) and runs every scim2-tester check twice, each
on a tenant of its own: once with a Secret Token, once with an access token obtained as Entra
obtains it (a client secret in `Authorization: Basic` at the tenant's token endpoint). Prints each
result and the counts, and exits non-zero unless every check of both runs passed (SUCCESS,
COMPLIANT or ACCEPTABLE).
A skipped check counts as not passed: nothing may be skipped for lack of a feature.

    .venv/bin/python tests/conformance/run.py
"""

import base64
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

ROOT = Path(__file__).resolve().parents[2]
PASSING = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_config(work: Path) -> Path:
    text = (ROOT / "wrangler.toml").read_text()
    text = re.sub(r"\[build\][^\[]*", "", text)
    text = re.sub(r"^main = .*$", f'main = "{ROOT / "build/index.js"}"', text, flags=re.M)
    text = re.sub(r"^migrations_dir = .*$", f'migrations_dir = "{ROOT / "migrations"}"', text, flags=re.M)
    text = re.sub(r"^directory = .*$", f'directory = "{ROOT / "assets"}"', text, flags=re.M)
    path = work / "wrangler.toml"
    path.write_text(text)
    return path


def admin(base: str, token: str, method: str, path: str, body=None) -> dict:
    req = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def access_token(origin: str, admin_token: str, sub: str) -> str:
    """An access token for a new client secret of `sub`, asked for as Entra asks."""
    created = admin(origin, admin_token, "POST", f"/admin/v1/tenants/{sub}/oauth/secrets")
    pair = f"{urllib.parse.quote(created['clientId'], safe='')}:{urllib.parse.quote(created['clientSecret'], safe='')}"
    req = urllib.request.Request(
        f"{origin}/tenants/{sub}/oauth/token",
        method="POST",
        data=b"grant_type=client_credentials",
        headers={
            "Authorization": "Basic " + base64.b64encode(pair.encode()).decode(),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        body = json.loads(r.read())
    assert body["token_type"] == "Bearer" and body["expires_in"] >= 3600, body
    return body["access_token"]


def main() -> int:
    if not (ROOT / "build/index.js").exists():
        print("the Worker is not built: run `make build` first", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="scim-edge-conformance-"))
    config = test_config(work)
    env = dict(os.environ, CI="true", WRANGLER_SEND_METRICS="false", CLOUDFLARE_CF_FETCH_ENABLED="false", NO_COLOR="1")
    wrangler = str(ROOT / "node_modules/.bin/wrangler")
    subprocess.run(
        [wrangler, "d1", "migrations", "apply", "DB", "--local", "--persist-to", str(work / "state"), "-c", str(config)],
        cwd=work, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    port, inspector = free_port(), free_port()
    admin_token = secrets.token_urlsafe(24)
    log = open(work / "wrangler.log", "w")
    server = subprocess.Popen(
        [wrangler, "dev", "--local", "--ip", "127.0.0.1", "--port", str(port), "--inspector-port", str(inspector),
         "--persist-to", str(work / "state"), "-c", str(config), "--var", f"ADMIN_TOKEN:{admin_token}"],
        cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
    )
    try:
        origin = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(origin + "/admin/v1/tenants", timeout=5)
            except urllib.error.HTTPError:
                break  # any HTTP answer means the Worker is up
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    print((work / "wrangler.log").read_text(), file=sys.stderr)
                    return 2
                time.sleep(0.25)
        runs = {}
        for credential, sub in [("Secret Token", "conformance"), ("OAuth access token", "conformance-oauth")]:
            admin(origin, admin_token, "POST", "/admin/v1/tenants", {"subdomain": sub, "name": "scim2-tester"})
            if credential == "Secret Token":
                token = admin(origin, admin_token, "POST", f"/admin/v1/tenants/{sub}/tokens")["token"]
            else:
                token = access_token(origin, admin_token, sub)
            # The path form of the Tenant URL: Python's resolver does not resolve *.localhost.
            base_url = f"{origin}/tenants/{sub}/api/scim/v2"
            http = Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            runs[credential] = check_server(SyncSCIMClient(http))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()

    failed_any = False
    for credential, results in runs.items():
        print(f"## with a {credential}")
        counts = Counter()
        for r in results:
            counts[r.status.name] += 1
            where = f"[{r.resource_type}] " if getattr(r, "resource_type", None) else ""
            line = f"{r.status.name:<10} {where}{r.title}"
            if r.status not in PASSING and r.reason:
                line += f"\n           reason: {r.reason}"
            print(line)
        passed = sum(n for s, n in counts.items() if Status[s] in PASSING)
        failed = len(results) - passed
        failed_any = failed_any or failed > 0 or not results
        print()
        print(f"scim2-tester 0.5.2 ({credential}): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        # The plain closing line CI reads.
        print(f"conformance ({credential}): {passed} passed, {failed} failed")
        print()
    return 1 if failed_any else 0


if __name__ == "__main__":
    sys.exit(main())
