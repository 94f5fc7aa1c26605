"""``python -m relaygate.recorder FD``: the recorder process a gateway starts (see relaygate.recorder.child)."""

import sys

from relaygate.recorder.child import run_from_fd

run_from_fd(int(sys.argv[1]))
