"""`RunConfig` and `--set`: typed values that round-trip through the record's JSON."""

import json

import pytest


@pytest.mark.slow
def test_set_values_are_typed_and_round_trip_through_json():
    from benchbench.run.config import RunConfig, apply_sets

    base = RunConfig(model="vit_tiny", dataset="digits")
    config = apply_sets(base, ["augment=none", "val_size=none", "learning_rate=5e-4", "jit_compile=true",
                               "model.depths=(1, 1)"])
    assert config.augment == "none"  # a value of a string field, not "use the default"
    assert config.val_size is None and config.learning_rate == 5e-4 and config.jit_compile is True
    assert dict(config.model_args) == {"depths": (1, 1)} and config.hash() != base.hash()
    again = RunConfig.from_resolved(json.loads(json.dumps(config.resolved())))
    assert again == config and again.hash() == config.hash()
