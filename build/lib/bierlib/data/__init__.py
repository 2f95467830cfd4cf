"""Datasets. None of them downloads: fetch data with the scripts in ``data_scripts/``."""
from .base import DatasetNotFoundError, ImageTensorDataset, data_root
from .files import CUB200, DATASETS, SOP, Cars196, IndexedImageDataset, InShop, paper_transforms
from .omniglot import TEST_ALPHABETS, TRAIN_ALPHABETS, Omniglot

__all__ = ["CUB200", "Cars196", "DATASETS", "DatasetNotFoundError", "ImageTensorDataset",
           "IndexedImageDataset", "InShop", "Omniglot", "SOP", "TEST_ALPHABETS", "TRAIN_ALPHABETS",
           "data_root", "paper_transforms"]
