"""Experiments: recipes and presets as data, the tutorial's two programs, few-label learning."""
