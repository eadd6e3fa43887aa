"""`benchbench bench`: how fast each model trains and infers on this machine, as model FLOPs utilisation
(MFU), and what `make bench` puts in reports/bench/<host>.md. One room per measurement:

    speed.py     one configuration's training and inference speed and MFU, on any Keras backend
    pipeline.py  the input pipelines' steady state, against the models they feed
    overhead.py  `benchbench run`'s training loop against a bare `model.fit`
    study.py     where a study's time goes (the demo's cells, with its workers)
    suite.py     what `make bench` measures, and the targets it is measured against
    tables.py    the report's tables

The measurements that need a process of their own run `python -m benchbench.bench MODE JSON` (__main__.py).
"""

from benchbench.bench.overhead import PROCESSES as OVERHEAD_PROCESSES
from benchbench.bench.overhead import overhead_config, runner_overhead
from benchbench.bench.pipeline import pipeline_throughput
from benchbench.bench.speed import BACKENDS, BenchConfig, bench, bench_repeated, parse_model_sets, peak_flops
from benchbench.bench.suite import run_suite
from benchbench.bench.tables import overhead_markdown, pair_markdown, record_markdown, suite_markdown, write_suite

__all__ = ["BACKENDS", "OVERHEAD_PROCESSES", "BenchConfig", "bench", "bench_repeated", "overhead_config",
           "overhead_markdown", "pair_markdown", "parse_model_sets", "peak_flops", "pipeline_throughput",
           "record_markdown", "run_suite", "runner_overhead", "suite_markdown", "write_suite"]
