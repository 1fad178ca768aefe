"""Helpers for tests: tiny random checkpoints and tokenizers of every supported encoder family."""
