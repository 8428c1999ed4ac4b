"""``python -m sagebert.cli``: the same as the ``sagebert`` command."""

import sys

from . import main

sys.exit(main())
