"""Parallel training data (threadweaver.md section 4): stage 0 (correct sequential traces, the rollout with
`parallel=false`), stage 1 (an LLM rewrites them into the format, `stage1/`), stage 2 (self-training: a
model's own correct, valid parallel rollouts, `select.py`), and the dataset statistics of the paper's
Table 8 (`stats.py`). The CLI is `threadweaver datagen ...` (threadweaver/commands/datagen*.py)."""
