"""Load test: `roberta serve` vs the server users build today (FastAPI calling transformers' pipeline per request).

    python bench/serve.py                              # concurrency 1, 8, 32, 128; prints a table
    python bench/serve.py --requests 500 2000 3000 4500 --write   # 10,000 requests to ours, recorded in BENCHMARKS.md

Both servers run the embedded fill-mask model (same weights, same tokenizer files) as subprocesses on free
loopback ports, one at a time under load (the other idles), same environment (--threads torch/OpenMP threads
each; 1 by default, the sane setting on a shared machine). Each level is run in --rounds alternating rounds
(anchor, ours, anchor, ...) so that both see the same machine when its load drifts. The anchor is a plain FastAPI app
whose `def predict` (FastAPI's thread pool) calls `transformers.pipeline("fill-mask")(text, **parameters)`.
The load generator is asyncio with raw HTTP/1.1 keep-alive connections (one per simulated client, cheap enough
to leave the CPU to the servers); each level is bounded by a request count and a time limit, loopback only.
Every request body is one sentence with one <mask>; a request counts as failed unless it gets 200 and a JSON
list of 5 candidates. Latency: from writing the request to reading the whole answer. Server CPU: the server
process's user + system time over the level divided by the requests answered (a figure that other jobs on a
shared machine disturb far less than req/s).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # loopback only, by construction
REQUEST_TIMEOUT = 60  # seconds; a request without an answer by then counts as failed
WARMUP_SECONDS = 30  # time limit of the few requests sent to each server before each level
WORDS = ("river mountain city music science garden window morning history language friend market winter "
         "doctor ocean library engine village teacher summer").split()

ANCHOR_APP = textwrap.dedent('''
    import sys
    from fastapi import FastAPI
    from transformers import pipeline

    pipe = pipeline("fill-mask", model=sys.argv[1], device=-1)
    app = FastAPI()

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.post("/predict")
    def predict(body: dict):
        return pipe(body["inputs"], **body.get("parameters", {}))

    if __name__ == "__main__":
        import uvicorn
        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
''')


def sentences(n: int) -> list[str]:
    """n deterministic sentences of 6-30 words with one <mask> (varied lengths, as real traffic)."""
    out = []
    for i in range(n):
        length = 6 + (i * 7) % 25
        words = [WORDS[(i * 3 + j * 5) % len(WORDS)] for j in range(length)]
        words[(i * 11) % length] = "<mask>"
        out.append("The " + " ".join(words) + ".")
    return out


# ---------------------------------------------------------------- servers
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start(kind: str, model: str, max_batch_size: int, max_wait_ms: float, threads: int, workers: int | None = None):
    port = free_port()
    if kind == "ours":
        command = [sys.executable, "-m", "roberta.cli", "serve", "--task", "fill-mask", "--port", str(port),
                   "--max-batch-size", str(max_batch_size), "--max-wait-ms", str(max_wait_ms), "--log-level", "warning"]
        command += ["--workers", str(workers)] if workers else []
    else:
        script = Path(tempfile.mkdtemp(prefix="roberta-bench-")) / "anchor_app.py"
        script.write_text(ANCHOR_APP)
        command = [sys.executable, str(script), model, str(port)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600  # a loaded machine can take minutes to import transformers
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} server exited: {process.stderr.read()[-2000:]}")
        try:
            status, _ = asyncio.run(_one_get(port, "/health"))
            if status == 200:
                return process, port
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{kind} server never became healthy")


async def _one_get(port: int, path: str):
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    status, body = await _read_response(reader)
    writer.close()
    return status, body


async def _read_response(reader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next((int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:")), None)
    if length is None:
        raise ValueError("response without Content-Length")
    return status, await reader.readexactly(length)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) the process has used so far; NaN where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- load generator
async def load(port: int, concurrency: int, total: int, seconds: float, texts: list[str]) -> dict:
    """`concurrency` clients, each on its own keep-alive connection, until `total` requests or `seconds`."""
    latencies: list[float] = []
    failures: dict[str, int] = {}
    counter = iter(range(total))
    deadline = time.perf_counter() + seconds

    async def exchange(reader, writer, request: bytes):
        writer.write(request)
        await writer.drain()
        return await _read_response(reader)

    async def client():
        reader = writer = None
        for i in counter:
            if time.perf_counter() > deadline:
                break
            body = json.dumps({"inputs": texts[i % len(texts)]}).encode()
            request = (f"POST /predict HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            started = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(HOST, port)
                # a server that never answers fails the request (TimeoutError) instead of hanging the run
                status, payload = await asyncio.wait_for(exchange(reader, writer, request), REQUEST_TIMEOUT)
                ok = status == 200 and len(json.loads(payload)) == 5
                reason = None if ok else f"HTTP {status}"
            except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.TimeoutError) as err:
                reason = type(err).__name__
                if writer is not None:  # the connection's state is unknown: start a fresh one
                    writer.close()
                writer = None
            if reason is None:
                latencies.append(time.perf_counter() - started)
            else:
                failures[reason] = failures.get(reason, 0) + 1
        if writer is not None:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return {"concurrency": concurrency, "latencies": latencies, "failures": failures,
            "seconds": time.perf_counter() - started}


def merge(parts: list[dict]) -> dict:
    """Rounds of one level and server -> one result (throughput: requests over the rounds' summed time)."""
    latencies = sorted(x for p in parts for x in p["latencies"])
    failures: dict[str, int] = {}
    for p in parts:
        for reason, n in p["failures"].items():
            failures[reason] = failures.get(reason, 0) + n
    seconds = sum(p["seconds"] for p in parts)
    done = len(latencies)
    cpu = sum(p.get("cpu_seconds", float("nan")) for p in parts)
    return {"concurrency": parts[0]["concurrency"], "ok": done, "failed": sum(failures.values()), "failures": failures,
            "seconds": seconds, "throughput": done / seconds if seconds else 0.0,
            "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
            "p99_ms": 1000 * latencies[min(done - 1, int(0.99 * done))] if latencies else float("nan"),
            "cpu_ms": 1000 * cpu / done if done else float("nan")}


# ---------------------------------------------------------------- report
def table(results: dict) -> str:
    rows = ["| concurrency | server | requests ok | failed | req/s | p50 ms | p99 ms | server CPU ms / request "
            "| throughput ours / anchor |",
            "|---|---|---|---|---|---|---|---|---|"]
    for ours, anchor in zip(results["ours"], results["anchor"]):
        ratio = ours["throughput"] / anchor["throughput"] if anchor["throughput"] else float("inf")
        for name, r in (("roberta serve", ours), ("FastAPI + transformers pipeline", anchor)):
            rows.append(f"| {r['concurrency']} | {name} | {r['ok']} | {r['failed']} | {r['throughput']:.1f} | "
                        f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_ms']:.2f} | {f'**{ratio:.2f}x**' if r is ours else ''} |")
    return "\n".join(rows)


def summary(results: dict) -> str:
    by_c = {r["concurrency"]: (r, a) for r, a in zip(results["ours"], results["anchor"])}
    lines = []
    if 32 in by_c:
        ours, anchor = by_c[32]
        lines.append(f"- throughput at concurrency 32: {ours['throughput'] / anchor['throughput']:.2f}x the anchor "
                     f"(target >= 3x)")
    if 1 in by_c:
        ours, anchor = by_c[1]
        lines.append(f"- p50 latency at concurrency 1: {ours['p50_ms']:.2f} ms vs {anchor['p50_ms']:.2f} ms "
                     f"({ours['p50_ms'] - anchor['p50_ms']:+.2f} ms; target within 5 ms)")
    total = sum(r["ok"] + r["failed"] for r in results["ours"])
    requested = sum(results["requested"])
    failed = sum(r["failed"] for r in results["ours"])
    anchor_failed = sum(r["failed"] for r in results["anchor"])
    lines.append(f"- failed requests: roberta serve {failed} of {total} sent ({requested} asked for; a level stops "
                 f"sending at its time limit); anchor {anchor_failed} of "
                 f"{sum(r['ok'] + r['failed'] for r in results['anchor'])}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--requests", type=int, nargs="+", default=[300, 1000, 2000, 2000],
                        help="requests per concurrency level (one number, or one per level)")
    parser.add_argument("--seconds", type=float, default=120, help="time limit per level and server (all rounds)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per level (default 4)")
    parser.add_argument("--threads", type=int, default=1, help="torch / OpenMP threads per server (default 1)")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5)
    parser.add_argument("--workers", type=int, default=None, help="roberta serve --workers (default: its default)")
    parser.add_argument("--write", action="store_true", help="record the results under `## serve` in BENCHMARKS.md")
    parser.add_argument("--json", default=None, help="also save the raw results here")
    args = parser.parse_args()
    counts = args.requests * len(args.concurrency) if len(args.requests) == 1 else args.requests
    if len(counts) != len(args.concurrency):
        parser.error("--requests takes one number or one per --concurrency level")

    from roberta.embedded import default_model_path

    model = default_model_path()
    texts = sentences(512)
    results = {"ours": [], "anchor": [], "requested": [count // args.rounds * args.rounds for count in counts]}
    # each round stops sending at its time limit, and a request in flight then has REQUEST_TIMEOUT to answer
    bound = len(counts) * 2 * (args.seconds + args.rounds * REQUEST_TIMEOUT + WARMUP_SECONDS + REQUEST_TIMEOUT)
    print(f"{sum(results['requested'])} requests to each server; at most {bound / 60:.0f} min after both servers "
          "are up", flush=True)
    servers = {kind: start(kind, model, args.max_batch_size, args.max_wait_ms, args.threads, args.workers)
               for kind in ("anchor", "ours")}
    try:
        for concurrency, count in zip(args.concurrency, counts):
            rounds = {"anchor": [], "ours": []}
            for kind in ("anchor", "ours"):
                asyncio.run(load(servers[kind][1], min(concurrency, 8), 4 * min(concurrency, 8), WARMUP_SECONDS,
                                 texts))  # warm-up
            for _ in range(args.rounds):
                for kind in ("anchor", "ours"):
                    cpu = cpu_seconds(servers[kind][0].pid)
                    rounds[kind].append(asyncio.run(load(servers[kind][1], concurrency, count // args.rounds,
                                                         args.seconds / args.rounds, texts)))
                    rounds[kind][-1]["cpu_seconds"] = cpu_seconds(servers[kind][0].pid) - cpu
            for kind in ("anchor", "ours"):
                result = merge(rounds[kind])
                results[kind].append(result)
                print(f"{kind:6s} c={concurrency:<4d} ok={result['ok']:<6d} failed={result['failed']:<4d} "
                      f"{result['throughput']:8.1f} req/s  p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms  "
                      f"server CPU {result['cpu_ms']:6.2f} ms/req "
                      f"{result['failures'] or ''}", flush=True)
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(60)

    import torch
    import transformers

    machine = (f"{platform.machine()} {os.cpu_count()}-core CPU (shared with other jobs; load average "
               f"{os.getloadavg()[0]:.1f} at the end), torch {torch.__version__}, transformers {transformers.__version__}")
    report = "\n".join([
        f"Machine: {machine}. Model: the embedded fill-mask model (4 layers, hidden 256, vocab 8192), float32, "
        f"top 5, OMP_NUM_THREADS={args.threads} for both servers (each forward pass on {args.threads} thread(s); the "
        "anchor runs requests in parallel in FastAPI's thread pool, ours runs its --workers rounds in parallel). "
        f"`roberta serve --max-batch-size {args.max_batch_size} --max-wait-ms {args.max_wait_ms:g}"
        f"{f' --workers {args.workers}' if args.workers else ''}` vs a plain "
        "FastAPI app calling transformers' `pipeline(\"fill-mask\")` per request (`def` route: FastAPI's thread "
        "pool), each in its own process, same model folder and environment. Load: asyncio clients on keep-alive "
        "loopback connections, one sentence (8-32 words, one <mask>) per request, each level bounded by a request "
        f"count and {args.seconds:g} s per server, run as {args.rounds} alternating rounds (anchor, ours, ...).", "",
        table(results), "",
        summary(results), "",
        f"Command: `python bench/serve.py --requests {' '.join(map(str, counts))} --seconds {args.seconds:g} "
        f"--rounds {args.rounds} --threads {args.threads}"
        f"{'' if args.concurrency == [1, 8, 32, 128] else ' --concurrency ' + ' '.join(map(str, args.concurrency))}"
        f"{f' --workers {args.workers}' if args.workers else ''} --write`.",
    ])
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.write:
        from bench_loading import _write_section  # bench/ is on sys.path when this file runs

        _write_section(ROOT / "BENCHMARKS.md", "serve", report)


if __name__ == "__main__":
    main()
