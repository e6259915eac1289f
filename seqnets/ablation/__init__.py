"""Ablations: the variants of a config's `sweep()`, where they train, and the report over them.

Modules (imported on their own; none is imported here):
  sweeps     load a config file's sweep, apply a variant's overrides, find the variants
             still to train and refuse a changed resume
  executors  train the variants inline or as submitit jobs (local or SLURM)
  report     summarise finished run directories: report.md, results.json, tables and plots
"""
