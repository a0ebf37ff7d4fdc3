"""A load client for the resilience tests: run in separate OS processes, stdlib only.

Each thread posts its own signups, each with its own Idempotency-Key, and retries a request
that failed in transit (a killed worker, a reset connection, a 5xx) with the same key, as a
registration backend should. Every tenth signup is sent once more after it succeeded.
"""

from __future__ import annotations

import http.client
import json
import time
from concurrent.futures import ThreadPoolExecutor

ATTEMPTS = 8


def post(port: int, secret: str, body: dict, key: str) -> tuple[int, dict | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json", "Idempotency-Key": key}
        connection.request("POST", "/v1/assessments", body=json.dumps(body), headers=headers)
        response = connection.getresponse()
        payload = response.read()
        return response.status, json.loads(payload) if payload else None
    finally:
        connection.close()


def signup_until_answered(port: int, secret: str, body: dict, key: str) -> dict:
    """The first definite answer (2xx or 4xx), and how many attempts it took."""
    failures = []
    for attempt in range(1, ATTEMPTS + 1):
        try:
            status, document = post(port, secret, body, key)
        except (OSError, http.client.HTTPException) as error:
            failures.append(type(error).__name__)
        else:
            if status < 500:
                return {"key": key, "status": status, "id": (document or {}).get("id"), "attempts": attempt, "failures": failures}
            failures.append(str(status))
        time.sleep(0.05 * attempt)
    return {"key": key, "status": None, "id": None, "attempts": ATTEMPTS, "failures": failures}


def run_thread(port: int, secret: str, prefix: str, count: int) -> list[dict]:
    records = []
    for n in range(count):
        key = f"{prefix}-{n}"
        body = {"email": f"load.{prefix}.{n}@example-mail.com", "external_id": key, "device_id": f"dev-{n % 7}"}
        first = signup_until_answered(port, secret, body, key)
        first["kind"] = "first"
        records.append(first)
        if n % 10 == 0 and first["id"]:
            again = signup_until_answered(port, secret, body, key)
            again["kind"] = "retry"
            records.append(again)
    return records


def run_process(port: int, secret: str, process_index: int, threads: int, per_thread: int) -> list[dict]:
    """Entry point of one client process: `threads` threads of `per_thread` signups each."""
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(run_thread, port, secret, f"p{process_index}t{t}", per_thread) for t in range(threads)]
        return [record for future in futures for record in future.result()]


