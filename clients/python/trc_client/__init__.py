"""Python client for trcd, the Tiny Recursive Control service (standard library only).

    from trc_client import Client, TRCError
    c = Client("http://127.0.0.1:8080")
    c.control([1.0, 0.5], [0.0, 0.0])["controls"]
"""

from .client import TERMINAL, Client, TRCError, loss_terms

__all__ = ["Client", "TRCError", "TERMINAL", "loss_terms"]
