"""An oracle decoder for tracking tests: answers box prompts from ground-truth labels.

For every box it returns the union of the ground-truth objects whose centroid lies in the
box: logit +10 there, -10 elsewhere, predicted IoU 1 (a dividing cell's box holds both
daughters' centroids). This makes the
propagation machinery (prompts, exclusion, divisions, track ends, store, export) testable
without a trained SAM; it says nothing about SAM's quality.
"""

from types import SimpleNamespace

import numpy as np
import torch


class OracleDecoder:
    def __init__(self, labels: np.ndarray, axis: int = 0):
        self.labels = labels
        self.sam = SimpleNamespace(mask_threshold=0.0)
        self.embedding = None
        self.calls = []

    def embedding_for(self, plane):
        return SimpleNamespace(original_size=self.labels.shape[-2:], plane=tuple(plane))

    def set_embedding(self, embedding, pixels=None):
        self.embedding = embedding

    def decode(self, boxes, points, mask_inputs):
        lab = self.labels[self.embedding.plane]
        self.calls.append((self.embedding.plane, len(boxes)))
        out = torch.full((len(boxes), *lab.shape), -10.0)
        ids = np.unique(lab)[1:]
        centres = [np.argwhere(lab == t).mean(axis=0) for t in ids]
        for i, (r0, c0, r1, c1) in enumerate(boxes):
            dr = dc = 0
            for t, (r, c) in zip(ids, centres, strict=True):
                if r0 + dr <= r <= r1 - dr and c0 + dc <= c <= c1 - dc:
                    out[i][torch.as_tensor(lab == t)] = 10.0
        return out, torch.zeros((len(boxes), 1, 16, 16)), np.ones(len(boxes), np.float32)
