"""Synthetic embryo images with ground truth: the phantom generator for tests, training
and benchmarks.
"""
