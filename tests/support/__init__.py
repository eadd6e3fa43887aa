"""Helpers the tests share, one of each: the CLI runner (cli), the scrubbed environment (env), the tiny-study
builder (studies), the W&B reader (wandb), the PostgreSQL server (postgres), model and data checks (models,
data). Importable as `support.*` because pyproject's pytest `pythonpath` puts tests/ on sys.path."""
