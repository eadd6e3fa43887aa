"""Data: dataset specs behind a registry, the user's own image folders and TFDS sets, and the tf.data input
pipeline."""

from benchbench.data.any_tfds import builder_of, is_tfds, tfds_dataset
from benchbench.data.folder import FolderError, folder_dataset, is_folder
from benchbench.data.specs import (
    DATASETS,
    DataMissingError,
    DatasetSpec,
    catalogue,
    list_datasets,
    register_dataset,
    resolve_data_dir,
    using_data_dir,
)


def get_dataset(name: str, data_dir: str | None = None) -> DatasetSpec:
    """A registered data set, or the user's own: `folder:PATH` (data/folder.py), `tfds:NAME[:CONFIG]` prepared
    in `data_dir` (else $BENCHBENCH_DATA_DIR, else TFDS's default; data/any_tfds.py)."""
    if is_folder(name):
        return folder_dataset(name)
    if is_tfds(name):
        return tfds_dataset(name, resolve_data_dir(data_dir))
    return DATASETS.get(name)


def prepare(name: str, data_dir: str | None) -> str:
    """`benchbench data download NAME`: downloads and prepares the data set with TFDS; returns what to print."""
    data_dir = resolve_data_dir(data_dir)
    where = data_dir or "the TFDS default directory"
    if is_tfds(name):
        import importlib_resources  # noqa: F401  (TFDS 4.9.10 needs it on the download path, undeclared)

        builder_of(name, data_dir).download_and_prepare()
        return f"{name} is ready in {where}"
    spec = get_dataset(name)
    if not spec.download:
        return f"{spec.name} needs no download ({spec.source})"
    spec.prepare(data_dir)
    return f"{spec.name} is ready in {where}"


__all__ = ["DATASETS", "DataMissingError", "DatasetSpec", "FolderError", "catalogue", "get_dataset", "list_datasets",
           "prepare", "register_dataset", "resolve_data_dir", "using_data_dir"]
