"""One training loop for every tokenizer kind (accelerate: CPU, one GPU, many GPUs)."""
