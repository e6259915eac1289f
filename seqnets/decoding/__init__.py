"""Decoding: sampling from next-token distributions, autoregressive generation, beam search,
and decoding encoder-decoders (greedy, sampling, beam); `sentence_files` reads sources and
writes hypotheses, one sentence per line."""

from seqnets.decoding.sampling import filter_logits, sample
from seqnets.decoding.generation import generate, generate_text
from seqnets.decoding.beam_search import BeamResult, beam_search, greedy_search, tile_beams
from seqnets.decoding.encoder_decoder import decode_arrays, translate
