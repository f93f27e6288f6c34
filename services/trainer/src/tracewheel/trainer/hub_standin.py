"""A local stand-in of the Hugging Face Hub's HTTP API, for tests (no Hub is reachable from the
test machines): the endpoints `HfApi.create_repo` and `HfApi.upload_folder` call (huggingface_hub
2.5: hf_api.py, _commit_api.py, _upload_pipeline.py). Point a client at it with
`HfApi(endpoint=standin.url)` or `HF_ENDPOINT` (hub.py reads it at each push).

- `POST /api/repos/create` {name, organization, type, visibility}: 200 {url}, 409 when it exists;
- `POST /api/validate-yaml` {content, repoType}: the card's metadata, accepted when it parses;
- `POST /api/{type}s/{org}/{name}/preupload/{revision}` {files: [{path, sample, size}]}: every
  file "regular" (sent inline in the commit). The real Hub answers "lfs" for large and binary
  files, which huggingface_hub then uploads through Xet storage: that path is not stood in for;
- `POST /api/{type}s/{org}/{name}/commit/{revision}`: NDJSON (a header, then one `file` line per
  file with its base64 content): 200 {commitUrl, commitOid}.

Every call needs `authorization: Bearer <token>` (401 otherwise). It records each request, each
repository's creation payload and the files committed to it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml

_REPO_PATH = re.compile(r"^/api/(models|datasets)/([^/]+/[^/]+)/(preupload|commit)/([^/?]+)")


@dataclass
class Repo:
    created: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)


@dataclass
class HubState:
    token: str
    repos: dict[tuple[str, str], Repo] = field(default_factory=dict)  # (type, "org/name") -> repo
    requests: list[str] = field(default_factory=list)  # "METHOD /path", in order


def _handler(state: HubState, url: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: the test asserts on state
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            state.requests.append(f"POST {self.path}")
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.headers.get("authorization") != f"Bearer {state.token}":
                return self._answer(401, {"error": "Invalid credentials in Authorization header"})
            if self.path == "/api/repos/create":
                return self._create(json.loads(body))
            if self.path == "/api/validate-yaml":
                content = json.loads(body)["content"]
                yaml.safe_load(content.split("---")[1])  # a card whose metadata does not parse fails the test
                return self._answer(200, {"errors": [], "warnings": []})
            match = _REPO_PATH.match(self.path)
            repo = state.repos.get((match.group(1)[:-1], match.group(2))) if match else None
            if match is None or repo is None:
                return self._answer(404, {"error": f"Repository not found: {self.path}"})
            if match.group(3) == "preupload":
                files = json.loads(body)["files"]
                modes = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
                return self._answer(200, {"files": modes})
            return self._commit(repo, match.group(1), match.group(2), body)

        def _create(self, payload: dict[str, Any]) -> None:
            repo_type = payload.get("type") or "model"
            repo_id = f"{payload['organization']}/{payload['name']}"
            if (repo_type, repo_id) in state.repos:
                return self._answer(409, {"error": "You already created this repo", "url": f"{url}/{repo_id}"})
            state.repos[(repo_type, repo_id)] = Repo(created=payload)
            prefix = "datasets/" if repo_type == "dataset" else ""
            return self._answer(200, {"url": f"{url}/{prefix}{repo_id}"})

        def _commit(self, repo: Repo, kind: str, repo_id: str, body: bytes) -> None:
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            for line in lines[1:]:
                if line["key"] != "file":  # lfsFile would need the Xet upload, which is not stood in for
                    return self._answer(400, {"error": f"unexpected commit operation {line['key']}"})
                repo.files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            oid = hashlib.sha1(body).hexdigest()
            repo.commits.append(lines[0]["value"]["summary"])
            prefix = "datasets/" if kind == "datasets" else ""
            return self._answer(200, {"commitUrl": f"{url}/{prefix}{repo_id}/commit/{oid}", "commitOid": oid})

    return Handler


class HubStandIn:
    """The stand-in on 127.0.0.1 (a free port), serving from a thread until `close`."""

    def __init__(self, token: str) -> None:
        self.state = HubState(token)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state, ""))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._server.RequestHandlerClass = _handler(self.state, self.url)
        self._thread = threading.Thread(target=self._server.serve_forever, name="hub-standin", daemon=True)
        self._thread.start()

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        return self.state.repos[(repo_type, repo_id)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
