"""ivrbot: voice bots, IVR menus and outbound campaigns, with their own WebRTC gateway."""

from ivrbot.config import limit_blas_threads as _limit_blas_threads

# docs/facts.md: BLAS threads fighting over two cores made per-frame numpy work 100 ms late.
_limit_blas_threads()  # before anything imports numpy

__version__ = "0.1.0"
