"""Decoding: sampling from next-token distributions, autoregressive generation."""

from seqnets.decoding.sampling import filter_logits, sample
from seqnets.decoding.generation import generate, generate_text
