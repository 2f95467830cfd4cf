"""Datasets. None of them downloads: fetch data with the scripts in ``data_scripts/``."""
from .base import DatasetNotFoundError, ImageTensorDataset, data_root
from .omniglot import TEST_ALPHABETS, TRAIN_ALPHABETS, Omniglot

__all__ = ["DatasetNotFoundError", "ImageTensorDataset", "Omniglot", "TEST_ALPHABETS",
           "TRAIN_ALPHABETS", "data_root"]
