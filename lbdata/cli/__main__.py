"""``python -m lbdata.cli``: the same entry point as the ``lbdata`` console script."""

import sys

from lbdata.cli import main, register_serve_processor

# A process that multiprocessing spawns re-imports the main module by its spec name, but skips a name ending in
# ``__main__``. Naming the package keeps `python -m lbdata.cli serve` working as `lbdata serve` does: the model
# process of `transformers serve` runs this file again as ``__mp_main__``, and registers lbdata's processor.
__spec__ = sys.modules["lbdata.cli"].__spec__
register_serve_processor()

if __name__ == "__main__":
    main()
