"""The model zoo. Importing a family package runs its `@register_model` decorators."""

from benchbench.models import cnn, mobilevit, shiftvit, swin, vit  # noqa: F401,E402  (registration)
from benchbench.models._factory import (
                                        MODELS,
                                        ModelEntry,
                                        catalogue,
                                        check_builds,
                                        check_token_mixing,
                                        count_params,
                                        create_model,
                                        list_models,
                                        load_model,
                                        matched_pair,
                                        model_info,
                                        register_model,
)

__all__ = ["MODELS", "ModelEntry", "catalogue", "check_builds", "check_token_mixing", "count_params", "create_model",
           "list_models", "load_model", "matched_pair", "model_info", "register_model"]
