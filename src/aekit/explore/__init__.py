"""``aekit explore``: one self-contained HTML page to look at a model's codes.

The page holds a 2-D map of the test set's codes, the test images as a PNG sprite, and the decoder
itself as a list of operations with float32 weights (``decoder.py``), run in the page by a small
JavaScript interpreter (``decoder.js``): reconstructions and interpolations are decoded in the
browser, with nothing fetched from anywhere, so the file works from ``file://`` on an offline machine.
"""
