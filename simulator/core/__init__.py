"""The simulator's core: the firmware and hardware model, the part `make install` compiles.

Every module here is plain typed Python that mypyc also compiles to C (`simulator.compiled`,
docs/simulator.md). It imports nothing outside this folder but the wire protocol
(`acudevice.protocol`) and the foundation (`acudevice.errors`, `paths`, `files`), so what
a build is made from is this folder and those modules (`tests/test_layers.py` holds it to
that). The front ends (clock, links, servers, CLI, campaigns) import it, never the reverse.
"""
