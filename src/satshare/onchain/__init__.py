"""On-chain receiving: one derived address per invoice (keys from the kernel's
``satshare.watchonly``) and the indexes already handed out.

Layer 0: imports no other domain (see ``tests/test_architecture.py``). Queries live in
``repository.py``.
"""
