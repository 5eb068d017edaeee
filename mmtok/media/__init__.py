"""Reading and writing media files as tensors (layouts and ranges in each module)."""
