"""trcd with thousands of slow and idle connections open: the latency a good client sees.

Opens SLOW_CONNS connections (default 5,000) to a fresh trcd: half of them idle (connected, send
nothing), half slowloris (a request line and then one header byte every second, never
finishing); they come from 127.0.0.2, 127.0.0.3, ... (100 per address) so the per-client limit
admits them; any that trcd closes reconnect, so the count stays up.
Meanwhile a good client (127.0.0.1, one keep-alive connection) sends POST /v1/control
sequentially; its p50/p99 are printed next to the same client's figures with no slow connection
open (medians of ROUNDS rounds of REQUESTS requests). Target: p99 < 10 ms.

    /usr/bin/python3 tests/bench/slow_clients.py build/trcd tests/data/small_init.safetensors
"""
import http.client
import json
import multiprocessing as mp
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SLOW = int(os.environ.get("SLOW_CONNS", "5000"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
REQUESTS = int(os.environ.get("REQUESTS", "2000"))
PER_IP = 100
TIMEOUT = 120  # trcd's --request-timeout here: longer than the measurement, so all 5,000 stay
               # open while it runs (cutting them is tests/integration/test_hostile_http.py's)


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def open_one(port, k):
    src = "127.0.%d.%d" % (2 + k // PER_IP // 250, 2 + (k // PER_IP) % 250)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    if k % 2:  # slowloris: a request that never ends
        s.send(b"POST /v1/control HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    return s


def slow_clients(port, n, ready, stop, stats):
    """Child process: keeps n connections open until stop is set."""
    raise_nofile(n + 200)
    socks = {}
    reconnects = 0
    for k in range(n):
        try:
            socks[k] = open_one(port, k)
        except OSError as e:
            stats.put({"error": "connection %d: %s" % (k, e)})
            return
    ready.set()
    while not stop.is_set():
        t0 = time.time()
        for k in list(socks):
            s = socks[k]
            try:
                if k % 2:
                    s.send(b"a")
                else:
                    if s.recv(1, socket.MSG_PEEK) == b"":
                        raise ConnectionResetError
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                reconnects += 1
                try:
                    socks[k] = open_one(port, k)
                except OSError:
                    del socks[k]
        stop.wait(max(0.0, 1.0 - (time.time() - t0)))
    stats.put({"open": len(socks), "reconnects": reconnects})
    for s in socks.values():
        s.close()


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    m = re.search(r"^%s (\d+)" % name, text, re.M)
    return int(m.group(1)) if m else None


def good_client(port):
    body = json.dumps({"state": [1.0, 0.5], "target": [0.0, 0.0]})
    hdrs = {"Content-Type": "application/json"}
    p50s, p99s = [], []
    for _ in range(ROUNDS):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        lat = []
        for _ in range(REQUESTS):
            t0 = time.perf_counter()
            c.request("POST", "/v1/control", body=body, headers=hdrs)
            r = c.getresponse()
            r.read()
            lat.append(time.perf_counter() - t0)
            assert r.status == 200, r.status
        c.close()
        lat.sort()
        p50s.append(lat[len(lat) // 2] * 1e3)
        p99s.append(lat[int(len(lat) * 0.99)] * 1e3)
    return statistics.median(p50s), statistics.median(p99s)


def main():
    trcd, model = sys.argv[1], sys.argv[2]
    soft, hard = raise_nofile(SLOW + 200)
    if hard < SLOW + 200:
        print("slow_clients: RLIMIT_NOFILE hard limit %d is below %d: cannot open %d connections"
              % (hard, SLOW + 200, SLOW))
        return 1
    tmp = tempfile.mkdtemp(prefix="trcd-slow.")
    os.makedirs(os.path.join(tmp, "models"))
    shutil.copyfile(model, os.path.join(tmp, "models", "default.safetensors"))
    log = open(os.path.join(tmp, "trcd.log"), "wb")
    proc = subprocess.Popen([trcd, "--port", "0", "--access-log", "0", "--dt", "0.3333333333333333",
                             "--models-dir",
                             os.path.join(tmp, "models"), "--data-dir", tmp, "--dashboard-dir", tmp,
                             "--max-connections", str(SLOW + 100), "--max-connections-per-ip",
                             str(PER_IP + 10), "--request-timeout", str(TIMEOUT)],
                            stdout=log, stderr=subprocess.STDOUT)
    child = None
    try:
        port = None
        for _ in range(600):
            m = re.search(rb"listening on http://[^\s]*:(\d+)", open(log.name, "rb").read())
            if m:
                port = int(m.group(1))
                break
            time.sleep(0.05)
        if not port:
            print("slow_clients: trcd did not start:\n" + open(log.name).read())
            return 1
        load_start = os.getloadavg()[0]
        base = good_client(port)
        ready, stop, stats = mp.Event(), mp.Event(), mp.Queue()
        child = mp.Process(target=slow_clients, args=(port, SLOW, ready, stop, stats))
        child.start()
        deadline = time.time() + 120
        while not ready.is_set() and child.is_alive() and time.time() < deadline:
            time.sleep(0.1)
        if not ready.is_set():
            print("slow_clients: could not open the connections: %s" % (
                stats.get(timeout=1) if not stats.empty() else "timeout"))
            return 1
        conns_before = metric(port, "trcd_http_connections")
        loaded = good_client(port)
        conns_after = metric(port, "trcd_http_connections")
        closed = metric(port, "trcd_http_request_deadline_closes_total")
        stop.set()
        st = stats.get(timeout=60)
        child.join(30)
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                    if l.startswith("model name")), "?")
        print("slow_clients: %s, %d CPUs (shared machine), 1-min load average %.1f at the start, "
              "%.1f at the end" % (cpu, os.cpu_count(), load_start, os.getloadavg()[0]))
        print("slow_clients: good client POST /v1/control, keep-alive, medians of %d x %d "
              "requests" % (ROUNDS, REQUESTS))
        print("  no other connection:         p50 %.3f ms  p99 %.3f ms" % base)
        print("  with %d slow/idle open:     p50 %.3f ms  p99 %.3f ms  (trcd_http_connections "
              "%s before, %s after; %s cut by the %d s request deadline, %d reconnected)"
              % ((SLOW,) + loaded + (conns_before, conns_after, closed, TIMEOUT,
                                     st.get("reconnects", 0))))
        print("  target p99 < 10 ms: %s" % ("met" if loaded[1] < 10 else "NOT met"))
        return 0
    finally:
        if child and child.is_alive():
            child.terminate()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
