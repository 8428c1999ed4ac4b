"""Entry point the sagemaker-training toolkit runs (copied to /opt/ml/code at job start)."""

import sys

from sagebert.container.train_entry import main

sys.exit(main())
