"""Entry points: train.py, eval.py, compare.py (Hydra CLIs around pure functions)."""
