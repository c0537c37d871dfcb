"""Keras -> self-describing TFLite models (needs the ``[train]`` extra)."""
