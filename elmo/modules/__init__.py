"""Neural building blocks, one concept per file."""
