"""Training: the one loop (fit), objectives, optimizers and schedules, evaluation, greedy layer-wise, the ladder."""
