"""Reuse-path benchmark, measured side by side in one run on a real local Ray Serve.

    python bench/bench_reuse.py [--proxy haproxy|default] [--requests 400] [--rounds 3]

Prints, for the same machine and the same moment:
- reuse-hit latency p50/p99 of POST /v1/tasks vs a trivial FastAPI Serve endpoint (the
  ratio is the figure) and vs one that answers after one Redis read ("1 read": the floor
  of any answer that consults Redis), and throughput with 8 concurrent clients;
- submit-to-202 latency of a miss (the node blocks on a gated input, so the answer cannot
  depend on the node's duration);
- the number of runs started by N concurrent identical submits.
Medians over rounds; requests to the two endpoints alternate, so they share the noise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.local_graph import LocalGraph


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def paired(client: httpx.Client, sends, n: int, block: int) -> list[list[float]]:  # type: ignore[no-untyped-def]
    """n requests to each endpoint, taking turns every `block` requests (1 = alternate)."""
    out: list[list[float]] = [[] for _ in sends]
    for _ in range(n // block):
        for i, send in enumerate(sends):
            for _ in range(block):
                t0 = time.perf_counter()
                r = send(client)
                out[i].append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
    return out


def throughput(base: str, send, clients: int, seconds: float) -> float:  # type: ignore[no-untyped-def]
    count = [0] * clients
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as c:
            while time.perf_counter() < stop:
                send(c)
                count[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(count) / seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--proxy", choices=["haproxy", "default"], default="haproxy")
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duplicates", type=int, default=50)
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="rs-bench-"))
    graph = LocalGraph(root, haproxy=args.proxy == "haproxy",
                       callback_allow_cidrs=["127.0.0.0/8"])
    base = graph.start(wait=False)  # readiness is awaited once the reference apps are up
    settings = graph.settings

    from fastapi import FastAPI
    from ray import serve

    from tests.loopback import LoopbackServer
    from tests.media import make_video

    trivial_api = FastAPI()

    @serve.deployment(ray_actor_options={"num_cpus": 0.25})
    @serve.ingress(trivial_api)
    class Trivial:
        @trivial_api.post("/v1/tasks")
        async def tasks(self, body: dict) -> dict:
            return {"task_id": body.get("task_id"), "status": "completed"}

    redis_api = FastAPI()

    @serve.deployment(ray_actor_options={"num_cpus": 0.25})
    @serve.ingress(redis_api)
    class OneRead:
        """The floor of any answer from Redis: parse the body, one HGETALL, reply."""

        def __init__(self, url: str) -> None:
            import redis.asyncio as aioredis

            self.redis = aioredis.Redis.from_url(url, decode_responses=True)

        @redis_api.post("/v1/tasks")
        async def tasks(self, body: dict) -> dict:
            stages = await self.redis.hgetall(f"rs:{{{body['task_id']}}}:stages")
            return {"task_id": body.get("task_id"), "stages": list(stages)}

    serve.run(Trivial.bind(), name="trivial", route_prefix="/trivial")
    serve.run(OneRead.bind(settings.redis_url), name="oneread", route_prefix="/oneread")
    graph.wait_ready()
    video = make_video(root / "inputs" / "bench.mp4", seconds=4)
    loop = LoopbackServer().start()

    body = {"task_name": "ffmpeg.extract_audio", "task_id": "bench-hit",
            "input_data": {"video_path": str(video)}}
    with httpx.Client(base_url=base, timeout=30) as c:
        c.post("/v1/tasks", json=body)
        for _ in range(600):  # until the stage is stored
            if c.post("/v1/tasks", json=body).status_code == 200:
                break
            time.sleep(0.05)

        def hit(cl: httpx.Client) -> httpx.Response:
            return cl.post("/v1/tasks", json=body)

        def triv(cl: httpx.Client) -> httpx.Response:
            return cl.post("/trivial/v1/tasks", json=body)

        def one_read(cl: httpx.Client) -> httpx.Response:
            return cl.post("/oneread/v1/tasks", json=body)

        paired(c, (hit, triv, one_read), 100, 50)  # warm up
        lat: dict[int, dict[str, list[float]]] = {}
        for block in (50, 1):  # turns of 50 requests (each endpoint warm), then alternating
            rows: dict[str, list[float]] = {k: [] for k in ("h50", "h99", "t50", "t99",
                                                            "r50", "r99")}
            for _ in range(args.rounds):
                h, t, one = paired(c, (hit, triv, one_read), args.requests, block)
                for q in (50, 99):
                    rows[f"h{q}"].append(pct(h, q / 100))
                    rows[f"t{q}"].append(pct(t, q / 100))
                    rows[f"r{q}"].append(pct(one, q / 100))
            lat[block] = rows
        rps_hit = statistics.median(throughput(base, hit, 8, 4) for _ in range(args.rounds))
        rps_tr = statistics.median(throughput(base, triv, 8, 4) for _ in range(args.rounds))

        gate = "bench-gate.mp4"
        url = loop.serve_file(gate, video, gated=True)
        miss = []
        for i in range(args.requests // 4):
            b = {"task_name": "ffmpeg.extract_audio", "task_id": f"bench-miss-{i}",
                 "input_data": {"video_path": url}}
            t0 = time.perf_counter()
            r = c.post("/v1/tasks", json=b)
            miss.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 202 and r.json()["reuse_info"]["reuse_hit"] is False
        loop.open_gate(gate)

    async def duplicates() -> int:
        dup = {"task_name": "ffmpeg.extract_audio", "task_id": "bench-dup",
               "input_data": {"video_path": str(video)}}
        async with httpx.AsyncClient(base_url=base, timeout=60) as ac:
            rs = await asyncio.gather(*(ac.post("/v1/tasks", json=dup)
                                        for _ in range(args.duplicates)))
        return sum(1 for r in rs if r.json()["reuse_info"]["reuse_hit"] is False)

    runs = asyncio.run(duplicates())

    m = statistics.median
    print(f"\nreelserve reuse bench ({args.proxy} proxy, {os.cpu_count()} CPUs, medians of "
          f"{args.rounds} rounds x {args.requests} sequential requests per endpoint)")
    print(f"{'':34}{'reuse hit':>11}{'trivial':>11}{'ratio':>8}{'1 read':>10}{'ratio':>8}")
    for block, label in ((50, "turns of 50"), (1, "alternating")):
        r = lat[block]
        for q in ("50", "99"):
            h, t, one = m(r["h" + q]), m(r["t" + q]), m(r["r" + q])
            print(f"{f'latency p{q} (ms), {label}':34}{h:11.2f}{t:11.2f}{h / t:8.2f}"
                  f"{one:10.2f}{h / one:8.2f}")
    print(f"{'throughput, 8 clients (rps)':34}{rps_hit:11.0f}{rps_tr:11.0f}"
          f"{rps_hit / rps_tr:8.2f}")
    print(f"miss, submit-to-202 (ms): p50 {pct(miss, 0.5):.2f}  p99 {pct(miss, 0.99):.2f}  "
          f"(n={len(miss)}, node blocked on its input)")
    print(f"{args.duplicates} concurrent identical submits -> {runs} run(s)")
    graph.stop()


if __name__ == "__main__":
    main()
