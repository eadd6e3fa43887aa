"""Data: dataset specs behind a registry, and the tf.data input pipeline."""

from benchbench.data.specs import (
                                   DATASETS,
                                   DataMissingError,
                                   DatasetSpec,
                                   catalogue,
                                   get_dataset,
                                   list_datasets,
                                   register_dataset,
                                   resolve_data_dir,
)

__all__ = ["DATASETS", "DataMissingError", "DatasetSpec", "catalogue", "get_dataset", "list_datasets",
           "register_dataset", "resolve_data_dir"]
