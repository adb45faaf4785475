"""Data: IDX files, downloads, the dataset catalog, splits, users' files and batches on the device."""
