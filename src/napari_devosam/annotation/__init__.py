"""Annotation: the annotator's state (prompts, live mask, commit/undo) and the on-disk store of
committed objects.
"""
