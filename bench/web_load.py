"""Load on `talkinghead serve`: N concurrent clients on loopback, bounded in count and time.

    python bench/web_load.py [--clients 12] [--rounds 2] [--seconds 2] [--photo IMG] [--json FILE]

Starts the server as its own process (the bundled model, 127.0.0.1, a free port). Each client
makes an avatar, then for each round submits a demo job, polls it until it is done (checking the
mp4 comes back) or counts the 503 refusal. Meanwhile the server's resident memory is sampled from
/proc. Every submitted job must end as done or refused, none lost; the report gives the counts,
the job latencies and the memory (start, peak, end), with the CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(base: str, photo: bytes, rounds: int, seconds: float, out: dict, lock: threading.Lock) -> None:
    import httpx

    with httpx.Client(base_url=base, timeout=120) as c:
        r = c.post("/api/avatars", files=[("files", ("p.jpg", photo, "image/jpeg"))])
        if r.status_code != 200:
            with lock:
                out["avatar_errors"].append(r.text[:200])
            return
        avatar = r.json()["id"]
        for _ in range(rounds):
            t0 = time.monotonic()
            r = c.post("/api/jobs", data={"avatar": avatar, "demo_seconds": str(seconds)})
            if r.status_code == 503:
                with lock:
                    out["refused"] += 1
                time.sleep(0.5)
                continue
            job = r.json()["id"]
            with lock:
                out["submitted"] += 1
            while True:
                s = c.get(f"/api/jobs/{job}").json()
                if s["state"] in ("done", "failed"):
                    break
                time.sleep(0.2)
            ok = s["state"] == "done" and c.get(f"/api/jobs/{job}/result").content[4:8] == b"ftyp"
            with lock:
                out["done" if ok else "failed"] += 1
                out["latency_s"].append(time.monotonic() - t0)
            c.delete(f"/api/jobs/{job}")
        c.delete(f"/api/avatars/{avatar}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/web_load.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=12)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=float, default=2.0, help="length of each demo job")
    p.add_argument("--photo", type=Path, default=REPO.parent / "shared" / "data" / "faces" / "aaai22_AdamSchiff.jpg")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this long")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if not 1 <= args.clients <= 64 or not 1 <= args.rounds <= 10:
        p.error("--clients 1..64 and --rounds 1..10")
    from export.quantize import cpu_description

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "talkinghead.cli", "serve", "--port", str(port), "-q"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    memory: list[float] = []
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/api/limits", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("error: the server did not start: " + server.stderr.read().decode()[-2000:])
                time.sleep(0.3)
        memory.append(rss_mib(server.pid))
        out = {"submitted": 0, "done": 0, "failed": 0, "refused": 0, "latency_s": [], "avatar_errors": []}
        lock = threading.Lock()
        photo = args.photo.read_bytes()
        threads = [threading.Thread(target=client, args=(base, photo, args.rounds, args.seconds, out, lock), daemon=True)
                   for _ in range(args.clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads) and time.monotonic() - t0 < args.timeout:
            memory.append(rss_mib(server.pid))
            time.sleep(0.5)
        elapsed = time.monotonic() - t0
        memory.append(rss_mib(server.pid))
        lost = out["submitted"] - out["done"] - out["failed"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    lat = sorted(out["latency_s"])
    report = {"cpu": cpu_description(), "clients": args.clients, "rounds": args.rounds, "job_seconds": args.seconds,
              "submitted": out["submitted"], "done": out["done"], "failed": out["failed"], "refused_503": out["refused"],
              "lost": lost, "avatar_errors": out["avatar_errors"], "elapsed_s": round(elapsed, 1),
              "job_latency_s": {"p50": lat[len(lat) // 2] if lat else None, "max": lat[-1] if lat else None},
              "server_rss_mib": {"start": round(memory[0], 1), "peak": round(max(memory), 1), "end": round(memory[-1], 1)}}
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if lost == 0 and not out["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
