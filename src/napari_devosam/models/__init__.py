"""Models: the checkpoint registry, hash-checked downloads, safe loading of checkpoints and
fine-tuned decoder files, and model identity (architecture names, encoder hashes).
"""
