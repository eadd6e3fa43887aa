"""Data: dataset specs behind a registry, the user's own image folders, and the tf.data input pipeline."""

from benchbench.data.folder import FolderError, folder_dataset, is_folder
from benchbench.data.specs import (
    DATASETS,
    DataMissingError,
    DatasetSpec,
    catalogue,
    list_datasets,
    register_dataset,
    resolve_data_dir,
)


def get_dataset(name: str) -> DatasetSpec:
    """A registered data set, or the user's own: `folder:PATH` (data/folder.py)."""
    if is_folder(name):
        return folder_dataset(name)
    return DATASETS.get(name)


__all__ = ["DATASETS", "DataMissingError", "DatasetSpec", "FolderError", "catalogue", "get_dataset", "list_datasets",
           "register_dataset", "resolve_data_dir"]
