"""A batch job with known figures, for tests/test_batch.py: 3 "load" calls of 100 items each,
7 "transform" calls (2 of them fail with ValueError, caught), then what argv[1] asks for:
``ok`` (return), ``fail`` (raise), ``exit3`` (sys.exit(3)), ``hang`` (print READY and wait
in a measured "wait" stage until a signal ends the program)."""

import sys
import time

import otelperf

if __name__ == "__main__":
    for _ in range(3):
        with otelperf.measure("load") as op:
            op.add_items(100)

    @otelperf.measure("transform")
    def transform(i: int) -> int:
        if i in (3, 5):
            raise ValueError(f"bad row {i}")
        return i * 2

    for i in range(7):
        try:
            transform(i)
        except ValueError:
            pass

    mode = sys.argv[1] if len(sys.argv) > 1 else "ok"
    print(f"job argv={sys.argv[1:]} mode={mode}", flush=True)
    if mode == "fail":
        raise RuntimeError("the job broke")
    if mode == "exit3":
        sys.exit(3)
    if mode == "hang":
        with otelperf.measure("wait"):
            print("READY", flush=True)
            time.sleep(120)
