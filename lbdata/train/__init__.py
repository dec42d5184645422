"""Training: SFT (``sft``) then GRPO (``grpo``) on TRL, with rewards that are the validators
(``rewards``), flat YAML recipes (``recipes``), accelerate/DeepSpeed launching (``launch``), and the
tiny Qwen2.5-VL built offline (``tiny``) with its image-only processor (``processor``).

Imports run one way: ``common`` (output file names, DeepSpeed config lookup, ``TrainResult``) is the leaf;
``recipes``, ``processor``, ``rewards`` and ``monitor`` build on it; ``model`` on those; ``sft`` and
``grpo`` on ``model``; ``launch`` (the entry point of launched processes) on ``sft`` and ``grpo``.

Nothing here is imported by ``import lbdata``; torch and transformers load only when a submodule is
imported.
"""
