"""Training: the tiny Qwen2.5-VL built offline (``tiny``), its image-only processor (``processor``).

Nothing here is imported by ``import lbdata``; torch and transformers load only when a submodule is
imported.
"""
