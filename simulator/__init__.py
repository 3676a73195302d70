"""A simulated acupressure band: firmware, plant, sensor, battery and faults.

It speaks the real wire protocol (`acudevice.protocol`) in-process (`sim://`, module
`simulator.loopback`), on a pseudo-terminal or on TCP (`acudevice-sim serve`). See
`docs/simulator.md`. `acudevice` never imports this package; it finds the `sim://`
transport through the `acudevice.transports` entry point. The model itself is the core
(`simulator.core`), compiled when a build for its sources exists (`simulator.compiled`).
"""

from simulator.compiled import activate as _activate

_activate()
