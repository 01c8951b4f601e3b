"""ivrbot: voice bots, IVR menus and outbound campaigns, with their own WebRTC gateway."""

import os as _os

# docs/facts.md: BLAS threads fighting over two cores made per-frame numpy work 100 ms late.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
