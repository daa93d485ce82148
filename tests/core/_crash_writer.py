"""A writer process for the crash tests: it prints each transition once it is acknowledged.

Run as ``python _crash_writer.py DB_URL THREADS``; it never stops by itself.
"""

from __future__ import annotations

import sys
import threading

import tether


def main() -> None:
    db_url, threads = sys.argv[1], int(sys.argv[2])
    client = tether.connect(db_url)
    out = threading.Lock()

    def burst(worker: int) -> None:
        n = 0
        while True:
            intent = client.create_intent("crash.test.v1", "agent://crash/w", {"w": worker})
            lease = client.start(intent.intent_id, owner=f"w{worker}")
            with out:
                print(f"created {intent.intent_id}", flush=True)
            for k in range(5):
                client.record_step(intent.intent_id, f"s{k}", {"n": n}, lease=lease)
                with out:
                    print(f"step {intent.intent_id} s{k}", flush=True)
                n += 1
            client.complete(intent.intent_id, {"n": n}, lease=lease)
            with out:
                print(f"done {intent.intent_id}", flush=True)

    for w in range(threads):
        threading.Thread(target=burst, args=(w,), daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
