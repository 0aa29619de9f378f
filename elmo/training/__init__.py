"""Training the biLM: initialisation, objective, optimisation, the loop, evaluation, checkpoints
and export; ``run.run_training`` wires them together."""
