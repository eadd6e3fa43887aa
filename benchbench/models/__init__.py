"""The model zoo. Importing a family package runs its `@register_model` decorators."""

from benchbench.models._factory import MODELS, ModelEntry, count_params, create_model, list_models, load_model, model_info, register_model
from benchbench.models import cnn, mobilevit, shiftvit, vit  # noqa: F401,E402  (registration)

__all__ = ["MODELS", "ModelEntry", "count_params", "create_model", "list_models", "load_model", "model_info", "register_model"]
