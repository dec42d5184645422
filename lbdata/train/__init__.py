"""Training: SFT (``sft``) then GRPO (``grpo``) on TRL, with rewards that are the validators
(``rewards``), flat YAML recipes (``recipes``), accelerate/DeepSpeed launching (``launch``), and the
tiny Qwen2.5-VL built offline (``tiny``) with its image-only processor (``processor``).

Nothing here is imported by ``import lbdata``; torch and transformers load only when a submodule is
imported.
"""
