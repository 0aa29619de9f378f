"""Text to tensors: characters, vocabularies, tokenization, datasets and batching (no nn code)."""
