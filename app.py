"""The chat page: ``python app.py`` (same as ``rag app``) serves http://127.0.0.1:7860.

A thin shim kept for the source checkout; the page lives in :mod:`rag.web.app`.
"""

import sys

from rag.web.app import *  # noqa: F403 (the page's names, for `import app` in scripts and tests)
from rag.web.app import main

if __name__ == "__main__":
    sys.exit(main())
