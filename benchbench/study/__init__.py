"""`benchbench study`: study files (file.py), their cells as a queue on an Optuna storage (queue.py), the
workers that claim and run them (workers.py), the results files (results.py), and the command that ties
them together (launch.py)."""
