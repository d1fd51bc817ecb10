"""``python -m talkinghead ...``: the same command as ``talkinghead ...``."""
import sys

from .cli import main

sys.exit(main())
