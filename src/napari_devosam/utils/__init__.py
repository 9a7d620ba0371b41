"""Small helpers shared by every layer: atomic writes, JSON conversion, progress draining and
torch device selection.
"""
