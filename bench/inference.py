"""Inference figures, side by side in one run (ratios; these machines are noisy).

    .venv/bin/python bench/inference.py [--model SmolLM2-135M-Instruct|PATH] [--tokens 64]

1. service tokens/s (HTTP, openai client) vs raw `model.generate` on the same prompt (goal >= 0.9x)
2. aggregate tokens/s with 4 concurrent clients vs 1 (goal >= 2x)
3. time to first token (streaming)
4. adapter load time for a ~20 MB LoRA (r=16, all linear layers; goal <= 2 s)
5. agent-like steps: a ~2k-token shared prefix plus a growing tail, with and without prefix caching

It starts the real service (`python -m tracewheel.inference`) twice: prefix cache on and off.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai
import torch

from tracewheel.core.chat import SERVING_TEMPLATE, load_template
from tracewheel.core.health import wait_healthy
from tracewheel.core.natsserver import free_port
from tracewheel.inference.model_store import resolve_model

NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}


def start_service(model: str, home: Path, prefix_cache: bool) -> tuple[subprocess.Popen, str]:
    http, grpc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TW_INFERENCE_")} | {
        "TRACEWHEEL_HOME": str(home), "TW_INFERENCE_MODEL": model, "TW_INFERENCE_CHAT_TEMPLATE": SERVING_TEMPLATE,
        "TW_INFERENCE_HTTP_PORT": str(http), "TW_INFERENCE_GRPC_PORT": str(grpc_port),
        "TW_INFERENCE_CONSUME_EVENTS": "false", "TW_INFERENCE_PREFIX_CACHE_TOKENS": "32768" if prefix_cache else "0",
    }  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "tracewheel.inference"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if not wait_healthy(f"127.0.0.1:{grpc_port}", timeout_s=300):
        process.kill()
        raise SystemExit("inference did not start")
    return process, f"http://127.0.0.1:{http}/v1"


def raw_generate_tps(model_dir: Path, prompt: str, tokens: int) -> float:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = load_template(SERVING_TEMPLATE)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        add_generation_prompt=True,
        enable_thinking=False,
        return_tensors="pt",
        return_dict=True,
    )["input_ids"]
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)  # warm-up
        started = time.perf_counter()
        model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
    return tokens / (time.perf_counter() - started)


async def one(client: openai.AsyncOpenAI, messages: list[dict], tokens: int) -> tuple[int, float]:
    started = time.perf_counter()
    reply = await client.chat.completions.create(
        model="agent", messages=messages, max_tokens=tokens, temperature=0, extra_body=NO_THINKING
    )
    return reply.usage.completion_tokens, time.perf_counter() - started


async def throughput(client: openai.AsyncOpenAI, clients: int, tokens: int) -> float:
    prompts = [[{"role": "user", "content": f"Write a short story number {i} about a kettle."}] for i in range(clients)]
    started = time.perf_counter()
    results = await asyncio.gather(*(one(client, p, tokens) for p in prompts))
    return sum(n for n, _ in results) / (time.perf_counter() - started)


async def time_to_first_token(client: openai.AsyncOpenAI) -> float:
    started = time.perf_counter()
    stream = await client.chat.completions.create(
        model="agent",
        messages=[{"role": "user", "content": "Hello!"}],
        max_tokens=16,
        stream=True,
        extra_body=NO_THINKING,
    )
    first = None
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
    return first or float("nan")


async def agent_steps(client: openai.AsyncOpenAI, steps: int) -> list[float]:
    """A ~2k-token system prompt (tool schemas) plus a history that grows by one step each call."""
    system = "You can use these tools:\n" + "\n".join(
        f'{{"name": "tool_{i}", "description": "Does thing {i} on the page", "parameters": '
        f'{{"type": "object", "properties": {{"ref": {{"type": "string"}}, "text": {{"type": "string"}}}}}}}}'
        for i in range(40)
    )
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "Find the price of the red kettle."}]
    latencies = []
    for step in range(steps):
        _, seconds = await one(client, messages, 8)
        latencies.append(seconds)
        messages += [
            {"role": "assistant", "content": f"Step {step}: I look at the page."},
            {"role": "user", "content": f"Page snapshot {step}: - link 'Kettle {step}' [ref=e{step}]"},
        ]
    return latencies


def make_adapter(model_dir: Path, target: Path) -> float:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(model_dir), LoraConfig(r=16, lora_alpha=32, target_modules="all-linear")
    )
    model.save_pretrained(target)
    return (target / "adapter_model.safetensors").stat().st_size / 2**20


async def measure(url: str, tokens: int, adapter: Path | None) -> dict[str, float]:
    client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0, timeout=600)
    await throughput(client, 1, 4)  # warm-up
    out = {
        "tps_1": await throughput(client, 1, tokens),
        "tps_4": await throughput(client, 4, tokens),
        "ttft": await time_to_first_token(client),
    }
    steps = await agent_steps(client, 6)
    out["step_first"], out["step_rest"] = steps[0], statistics.median(steps[1:])
    if adapter is not None:
        import httpx

        started = time.perf_counter()
        reply = httpx.post(
            url.removesuffix("/v1") + "/v1/load_lora_adapter",
            json={"lora_name": "bench", "lora_path": str(adapter)},
            timeout=60,
        )
        if reply.status_code != 200:
            raise SystemExit(f"loading the adapter failed: {reply.status_code} {reply.text}")
        out["adapter_load"] = time.perf_counter() - started
    await client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="SmolLM2-135M-Instruct")
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    home = Path(os.environ.get("TRACEWHEEL_HOME", ".tracewheel")).resolve()
    model_dir = resolve_model(args.model, home / "models", load_template(SERVING_TEMPLATE))
    with tempfile.TemporaryDirectory() as scratch:
        adapter = Path(scratch) / "adapter"
        size_mb = make_adapter(model_dir, adapter)
        raw = raw_generate_tps(model_dir, "Write a short story number 0 about a kettle.", args.tokens)
        results = {}
        for cache in (True, False):
            # a fresh state folder: adapters a user's home restores on start would skew the figures
            process, url = start_service(str(model_dir), Path(scratch) / f"home-{int(cache)}", cache)
            try:
                results[cache] = asyncio.run(measure(url, args.tokens, adapter if cache else None))
            finally:
                process.terminate()
                process.wait(60)
    on, off = results[True], results[False]
    print(f"model {model_dir.name}, {args.tokens} new tokens, torch threads {torch.get_num_threads()}")
    print(f"{'figure':48} {'value':>10} {'ratio':>8} goal")
    print(f"{'raw model.generate tokens/s':48} {raw:10.1f}")
    print(f"{'service tokens/s, 1 client':48} {on['tps_1']:10.1f} {on['tps_1'] / raw:8.2f} >= 0.9x raw")
    batching = on["tps_4"] / on["tps_1"]
    print(f"{'service tokens/s, 4 clients (aggregate)':48} {on['tps_4']:10.1f} {batching:8.2f} >= 2x 1 client")
    print(f"{'time to first token, s':48} {on['ttft']:10.3f}")
    print(f"{f'adapter load ({size_mb:.1f} MB), s':48} {on['adapter_load']:10.3f} {'':8} <= 2 s")
    print(f"{'agent step 1 (cold 2k prefix), s':48} {on['step_first']:10.3f}")
    print(f"{'agent steps 2-6 median, prefix cache on, s':48} {on['step_rest']:10.3f}")
    speedup = off["step_rest"] / on["step_rest"]
    print(f"{'agent steps 2-6 median, prefix cache off, s':48} {off['step_rest']:10.3f} {speedup:8.2f} speed-up")


if __name__ == "__main__":
    main()
