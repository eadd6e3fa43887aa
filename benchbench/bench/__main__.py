"""The bench's fresh processes: `python -m benchbench.bench bench|flops|bare|runner JSON` prints one JSON
record (the Keras backend is the process's: KERAS_BACKEND, which `speed.child` sets)."""

import json
import sys

from benchbench.bench.overhead import bare_fit, runner_fit
from benchbench.bench.speed import BenchConfig, bench, counted_flops

MODES = {"bench": lambda payload: bench(BenchConfig.from_json(payload)),
         "flops": lambda payload: {"flops": counted_flops(BenchConfig.from_json(payload))},
         "bare": bare_fit, "runner": runner_fit}

if __name__ == "__main__":
    mode, payload = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(MODES[mode](payload)))
