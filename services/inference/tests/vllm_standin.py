"""A stand-in for `vllm serve` speaking the endpoints our vLLM backend uses (vLLM needs CUDA).

It is not vLLM: it checks the boundary — command line arguments arrive, /health gates
readiness, runtime LoRA loading needs VLLM_ALLOW_RUNTIME_LORA_UPDATING, adapter names reach
/v1/chat/completions. Run as `python vllm_standin.py serve MODEL --port P ...`.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = sys.argv[1:]
ADAPTERS: dict[str, str] = {}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self.reply(200, {})
        elif self.path == "/v1/models":
            self.reply(200, {"data": [{"id": name} for name in ["base", *ADAPTERS]]})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/v1/load_lora_adapter":
            if os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING") != "True":
                self.reply(400, {"error": "runtime LoRA updating is disabled"})
            elif not os.path.isdir(body["lora_path"]):
                self.reply(400, {"error": f"no adapter at {body['lora_path']}"})
            else:
                ADAPTERS[body["lora_name"]] = body["lora_path"]
                self.reply(200, {})
        elif self.path == "/v1/unload_lora_adapter":
            ADAPTERS.pop(body["lora_name"], None)
            self.reply(200, {})
        elif self.path == "/v1/chat/completions":
            known = body["model"] == ARGS[ARGS.index("--served-model-name") + 1] or body["model"] in ADAPTERS
            if not known:
                self.reply(404, {"error": {"message": f"The model `{body['model']}` does not exist."}})
                return
            message = {"role": "assistant", "content": f"served by {body['model']}; args {' '.join(ARGS)}"}
            self.reply(
                200,
                {
                    "id": "chatcmpl-x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                },
            )


if __name__ == "__main__":
    port = int(ARGS[ARGS.index("--port") + 1])
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
