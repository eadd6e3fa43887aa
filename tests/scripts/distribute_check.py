"""Run by run/test_run.py in a fresh process (logical devices must be set before TensorFlow starts):
`python tests/scripts/distribute_check.py OUT MODEL [OPTIONS_JSON [SIDES]]` trains one small run over two logical CPU
devices with MirroredStrategy and one on a single device (SIDES: both by default, "mirrored" for the first alone),
and prints the records' replicas and losses as JSON."""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from benchbench.run.config import RunConfig  # noqa: E402  (after the device set-up)
from benchbench.run.train import execute  # noqa: E402

out, model = sys.argv[1], sys.argv[2]
options = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
options = {key: tuple(value) if isinstance(value, list) else value for key, value in options.items()}
config = RunConfig(model, "synthetic", epochs=2, batch_size=32, image_size=32,
                   model_args=tuple(sorted(options.items())))
sides = sys.argv[4].split(",") if len(sys.argv) > 4 else ["mirrored", "none"]
report = {}
for distribute in sides:
    record = execute(config, out_dir=f"{out}/{distribute}", tracking="none", verbose=0, distribute=distribute)
    report[distribute] = {"replicas": record["replicas"], "loss": [h["loss"] for h in record["metrics"]["history"]],
                          "test_top1": record["metrics"]["test_top1"]}
print(json.dumps(report))
