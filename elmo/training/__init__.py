"""Training the biLM: objective, optimisation, evaluation, checkpoints and the loop."""
