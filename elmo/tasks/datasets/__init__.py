"""Readers for the downstream task files: plain Python records, no tensors."""
