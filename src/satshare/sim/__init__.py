"""Protocol-accurate local emulators of the outside systems SatShare talks to.

They ship with the product: sandbox mode runs on them, the test suite drives the real
client code against them over HTTP, and benchmarks use them as load sources. An adapter:
imports nothing of SatShare but the kernel; only composition roots (``satshare.sandbox``,
the CLI) import it.
"""
