"""`benchbench tune`: Optuna searches over a model family's space (search.py), their spaces (space.py,
dimensions.py), pruners (pruners.py) and tune-then-confirm on fresh seeds (confirm.py)."""
