"""Start the sandbox worker: `python -I -S -B <this directory>` (see the package docstring)."""

import os
import sys

# Run as a directory, sys.path[0] is this directory; import the package from its parent instead, so its modules
# keep their relative imports (nothing else is importable from there but the worker's own siblings, and agent code
# imports only through the allow-list).
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from worker.serve import main  # noqa: E402

os._exit(main(sys.argv))  # skip interpreter teardown (atexit, finalizers of agent objects)
